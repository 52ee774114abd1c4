// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title ConsentRegistry
/// @notice Patients grant and revoke access to their records, from their
/// wallet (grant, revoke) or by an EIP-712 signature that anyone may relay
/// (grantBySig, revokeBySig). Only hashes and addresses are stored: no PHI.
///
/// Encoding (shared with the gateway, see contracts/consentsig):
///  - grantee = keccak256(utf8("Practitioner/<id>")), or "Organization/<id>",
///    or "client/<client_id>";
///  - scope = keccak256(utf8("<Type>.<perms>")), e.g. "DiagnosticReport.rs",
///    "*.rs".
///
/// Rules:
///  - A grant is in force while block.timestamp < expiry. expiry must be in
///    the future when granted (ExpiryNotInFuture); type(uint64).max means
///    "until revoked".
///  - Granting an existing (grantee, scope) replaces its expiry, whether that
///    extends or shortens it, and emits ConsentGranted again.
///  - Revoking needs a stored grant (NoSuchGrant otherwise), expired or not:
///    a revocation that changes nothing reverts instead of burning a relayed
///    signature or the relayer's gas, and revoking an expired grant still
///    gives followers an explicit ConsentRevoked.
///  - grantee and scope must not be zero: a zero hash is an unset value, not
///    the hash of any identifier.
///  - Signatures: 65 bytes r || s || v with v in {27, 28} (as wallets
///    produce), s in the lower half of the curve order (no malleable twin),
///    signer recovered by ecrecover must be non-zero and equal to patient.
///    Only EOAs can sign; contract wallets call grant/revoke directly.
///  - Each signature carries the patient's current nonce, consumed on
///    success, so it works once (a replay recovers another address:
///    WrongSigner); a signature is valid until its deadline inclusive
///    (block.timestamp <= deadline), like EIP-2612.
///  - The domain separator binds chainId and this contract's address; it is
///    recomputed if the chain id changes (fork).
contract ConsentRegistry {
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,bytes32 grantee,bytes32 scope,uint64 expiry,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,bytes32 grantee,bytes32 scope,uint256 nonce,uint256 deadline)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("fhirgate ConsentRegistry");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// @dev secp256k1 order / 2: larger s values are the malleable twins.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    uint256 private immutable _deployChainId;
    bytes32 private immutable _deployDomainSeparator;

    /// @notice Next EIP-712 nonce of each patient.
    mapping(address patient => uint256) public nonces;
    /// @dev keccak256(abi.encode(patient, grantee, scope)) => expiry; 0 = no grant.
    mapping(bytes32 key => uint64 expiry) private _expiry;

    event ConsentGranted(address indexed patient, bytes32 indexed grantee, bytes32 indexed scope, uint64 expiry);
    event ConsentRevoked(address indexed patient, bytes32 indexed grantee, bytes32 indexed scope);

    /// @notice grantee or scope is zero.
    error ZeroGranteeOrScope();
    /// @notice expiry is not after the current block's timestamp.
    error ExpiryNotInFuture(uint64 expiry);
    /// @notice revoke of a (patient, grantee, scope) that has no grant.
    error NoSuchGrant(address patient, bytes32 grantee, bytes32 scope);
    /// @notice The signature's deadline has passed.
    error SignatureExpired(uint256 deadline);
    /// @notice The signature is not 65 bytes.
    error InvalidSignatureLength(uint256 length);
    /// @notice v is not 27 or 28.
    error InvalidSignatureV(uint8 v);
    /// @notice s is in the upper half of the curve order (malleable).
    error InvalidSignatureS(bytes32 s);
    /// @notice ecrecover found no signer (returned address(0)).
    error InvalidSignature();
    /// @notice The signature is valid but by someone else, or for other data
    /// (another nonce: a replay; another domain; another message).
    error WrongSigner(address recovered, address patient);

    constructor() {
        _deployChainId = block.chainid;
        _deployDomainSeparator = _buildDomainSeparator();
    }

    /// @notice Grants grantee the scope over the caller's records until expiry.
    function grant(bytes32 grantee, bytes32 scope, uint64 expiry) external {
        _grant(msg.sender, grantee, scope, expiry);
    }

    /// @notice Revokes the caller's grant of scope to grantee.
    function revoke(bytes32 grantee, bytes32 scope) external {
        _revoke(msg.sender, grantee, scope);
    }

    /// @notice grant on behalf of patient, who signed the EIP-712 message
    /// Grant(patient, grantee, scope, expiry, nonces[patient], deadline).
    function grantBySig(
        address patient,
        bytes32 grantee,
        bytes32 scope,
        uint64 expiry,
        uint256 deadline,
        bytes calldata signature
    ) external {
        require(block.timestamp <= deadline, SignatureExpired(deadline));
        uint256 nonce = nonces[patient];
        bytes32 structHash = keccak256(abi.encode(GRANT_TYPEHASH, patient, grantee, scope, expiry, nonce, deadline));
        _checkSigner(patient, _digest(structHash), signature);
        unchecked {
            nonces[patient] = nonce + 1;
        }
        _grant(patient, grantee, scope, expiry);
    }

    /// @notice revoke on behalf of patient, who signed the EIP-712 message
    /// Revoke(patient, grantee, scope, nonces[patient], deadline).
    function revokeBySig(address patient, bytes32 grantee, bytes32 scope, uint256 deadline, bytes calldata signature)
        external
    {
        require(block.timestamp <= deadline, SignatureExpired(deadline));
        uint256 nonce = nonces[patient];
        bytes32 structHash = keccak256(abi.encode(REVOKE_TYPEHASH, patient, grantee, scope, nonce, deadline));
        _checkSigner(patient, _digest(structHash), signature);
        unchecked {
            nonces[patient] = nonce + 1;
        }
        _revoke(patient, grantee, scope);
    }

    /// @notice Whether patient's grant of scope to grantee is in force now.
    function isPermitted(address patient, bytes32 grantee, bytes32 scope) external view returns (bool) {
        return block.timestamp < _expiry[_key(patient, grantee, scope)];
    }

    /// @notice The stored expiry of a grant, expired or not; 0 if none.
    function expiryOf(address patient, bytes32 grantee, bytes32 scope) external view returns (uint64) {
        return _expiry[_key(patient, grantee, scope)];
    }

    /// @notice The EIP-712 domain separator for this chain and contract.
    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return block.chainid == _deployChainId ? _deployDomainSeparator : _buildDomainSeparator();
    }

    function _grant(address patient, bytes32 grantee, bytes32 scope, uint64 expiry) private {
        require(grantee != bytes32(0) && scope != bytes32(0), ZeroGranteeOrScope());
        require(expiry > block.timestamp, ExpiryNotInFuture(expiry));
        _expiry[_key(patient, grantee, scope)] = expiry;
        emit ConsentGranted(patient, grantee, scope, expiry);
    }

    function _revoke(address patient, bytes32 grantee, bytes32 scope) private {
        bytes32 key = _key(patient, grantee, scope);
        require(_expiry[key] != 0, NoSuchGrant(patient, grantee, scope));
        delete _expiry[key];
        emit ConsentRevoked(patient, grantee, scope);
    }

    function _key(address patient, bytes32 grantee, bytes32 scope) private pure returns (bytes32) {
        return keccak256(abi.encode(patient, grantee, scope));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _digest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR(), structHash));
    }

    function _checkSigner(address patient, bytes32 digest, bytes calldata signature) private pure {
        require(signature.length == 65, InvalidSignatureLength(signature.length));
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(uint256(s) <= HALF_ORDER, InvalidSignatureS(s));
        require(v == 27 || v == 28, InvalidSignatureV(v));
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), InvalidSignature());
        require(signer == patient, WrongSigner(signer, patient));
    }
}
