// The wallet (EIP-1193, window.ethereum: MetaMask and the like): connect,
// add or switch to the gateway's chain, Sign-In With Ethereum (EIP-4361,
// signed with personal_sign), typed-data signatures and transactions.
import { checksumAddress, bytesToHex, utf8 } from './eth.js';
import { request, wellKnown, ApiError } from './api.js';

/** WalletError has a kind (no-wallet, rejected, wrong-chain, pending, not-linked, failed) and words a patient understands. */
export class WalletError extends Error {
  constructor(kind, message, detail = '') {
    super(message);
    this.kind = kind;
    this.friendly = message;
    this.detail = detail; // the wallet's own words, shown folded as technical details
  }
}

export const provider = () => (typeof window !== 'undefined' ? window.ethereum : undefined);

const NO_WALLET = 'No Ethereum wallet was found in this browser. Install MetaMask (or another Ethereum wallet extension), then reload this page.';

/** explain turns a wallet error into plain words. */
export function explain(err, action = 'the request') {
  if (err instanceof WalletError) return err;
  const code = err?.code ?? err?.data?.originalError?.code;
  const msg = String(err?.message || err || '');
  if (code === 4001 || /user (rejected|denied)|rejected by user|user cancel/i.test(msg)) {
    return new WalletError('rejected', `You declined ${action} in your wallet. Nothing was changed. You can try again whenever you are ready.`);
  }
  if (code === -32002) return new WalletError('pending', 'Your wallet is already showing a request. Open your wallet to answer it.');
  if (code === 4100) return new WalletError('unauthorized', 'Your wallet has not allowed this site yet. Connect your wallet first.');
  if (code === 4902) return new WalletError('unknown-chain', 'Your wallet does not know this network yet.');
  if (/insufficient funds/i.test(msg)) {
    return new WalletError('funds', 'Your wallet has no ether on this network to pay the network fee. Choose the gas-free option instead (the gateway sends it for you).');
  }
  return new WalletError('failed', `Your wallet could not complete ${action}. Nothing was changed. Please try again.`, msg);
}

export async function connect() {
  const eth = provider();
  if (!eth) throw new WalletError('no-wallet', NO_WALLET);
  let accounts;
  try {
    accounts = await eth.request({ method: 'eth_requestAccounts' });
  } catch (e) {
    throw explain(e, 'the connection');
  }
  if (!accounts || !accounts.length) throw new WalletError('no-account', 'Your wallet did not share an account. Unlock your wallet and try again.');
  return checksumAddress(accounts[0]);
}

export async function currentChainId() {
  const eth = provider();
  if (!eth) throw new WalletError('no-wallet', NO_WALLET);
  return parseInt(await eth.request({ method: 'eth_chainId' }), 16);
}

/** addChainParams is the EIP-3085 wallet_addEthereumChain parameter from /.well-known/fhirgate. */
export function addChainParams(info) {
  const p = {
    chainId: '0x' + Number(info.chainId).toString(16),
    chainName: info.chainName || `fhirgate chain ${info.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: info.rpc ? [info.rpc] : [],
  };
  return p;
}

/** switchChain asks the wallet to switch to the gateway's chain, adding it when the wallet does not know it. */
export async function switchChain() {
  const eth = provider();
  if (!eth) throw new WalletError('no-wallet', NO_WALLET);
  const info = await wellKnown();
  const params = addChainParams(info);
  try {
    await eth.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: params.chainId }] });
  } catch (e) {
    const code = e?.code ?? e?.data?.originalError?.code;
    if (code !== 4902 && !/unrecognized chain|unknown chain/i.test(String(e?.message))) throw explain(e, 'the network switch');
    if (!params.rpcUrls.length) {
      throw new WalletError('failed', 'This gateway does not publish a network address for wallets. Ask its operator for the network settings.');
    }
    try {
      await eth.request({ method: 'wallet_addEthereumChain', params: [params] });
      await eth.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: params.chainId }] });
    } catch (e2) {
      throw explain(e2, 'adding the network');
    }
  }
  const now = await currentChainId();
  if (now !== Number(info.chainId)) {
    throw new WalletError('wrong-chain', `Your wallet is still on another network. Choose "${params.chainName}" in your wallet.`);
  }
}

/** siweMessage builds the EIP-4361 message for this page's origin. */
export function siweMessage({ domain, origin, address, chainId, nonce, issuedAt, expiration }) {
  return [
    `${domain} wants you to sign in with your Ethereum account:`,
    address,
    '',
    'Sign in to fhirgate to see and manage your health records.',
    '',
    `URI: ${origin}/`,
    'Version: 1',
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt}`,
    `Expiration Time: ${expiration}`,
  ].join('\n');
}

/**
 * signIn runs Sign-In With Ethereum with the connected wallet and returns
 * the gateway's token response. The wallet must be on the gateway's chain.
 */
export async function signIn(address) {
  const eth = provider();
  if (!eth) throw new WalletError('no-wallet', NO_WALLET);
  const info = await wellKnown();
  const chainId = await currentChainId();
  if (chainId !== Number(info.chainId)) {
    throw new WalletError('wrong-chain', `Your wallet is on another network (chain ${chainId}). Switch to "${info.chainName || 'the gateway\'s network'}" to continue.`);
  }
  const { nonce } = await request('/auth/siwe/nonce');
  const now = new Date();
  const message = siweMessage({
    domain: location.host,
    origin: location.origin,
    address,
    chainId,
    nonce,
    issuedAt: now.toISOString(),
    expiration: new Date(now.getTime() + 60 * 60 * 1000).toISOString(),
  });
  let signature;
  try {
    signature = await eth.request({ method: 'personal_sign', params: [bytesToHex(utf8(message)), address] });
  } catch (e) {
    throw explain(e, 'the sign-in signature');
  }
  try {
    return await request('/auth/siwe', { method: 'POST', body: { message, signature }, contentType: 'application/json' });
  } catch (e) {
    if (e instanceof ApiError && e.status === 403 && /not active|not verified|deactivated/i.test(e.detail)) {
      throw new WalletError('not-verified', 'Your practitioner account is not active: an administrator has not verified it yet, or deactivated it. Ask the clinic\'s administrator, then sign in again.');
    }
    if (e instanceof ApiError && e.status === 403) {
      throw new WalletError('not-linked', `This wallet (${address}) is not linked to a patient or practitioner record on this gateway. Ask your clinic to add this wallet address to your record, then sign in again.`);
    }
    if (e instanceof ApiError && e.status === 401) {
      if (/domain|URI/i.test(e.detail)) {
        throw new WalletError('failed', 'The sign-in was refused because this page was opened under another address than the gateway expects. Open the portal at the address your clinic gave you.');
      }
      if (/expired|not valid yet/i.test(e.detail)) {
        throw new WalletError('failed', 'The sign-in was refused because your computer\'s clock differs from the gateway\'s. Check the date and time of your computer and try again.');
      }
      throw new WalletError('failed', 'The sign-in signature could not be checked. Please try again.');
    }
    throw e;
  }
}

export async function sendTransaction(tx, action) {
  try {
    return await provider().request({ method: 'eth_sendTransaction', params: [tx] });
  } catch (e) {
    throw explain(e, action);
  }
}

export async function signTypedData(address, typed, action) {
  try {
    return await provider().request({ method: 'eth_signTypedData_v4', params: [address, JSON.stringify(typed)] });
  } catch (e) {
    throw explain(e, action);
  }
}

/** onChange calls fn when the wallet's account or network changes. */
export function onChange(fn) {
  const eth = provider();
  if (!eth || typeof eth.on !== 'function') return;
  eth.on('accountsChanged', () => fn('accounts'));
  eth.on('chainChanged', () => fn('chain'));
}
