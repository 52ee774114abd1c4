// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title AuditAnchor
/// @notice Anchors checkpoints (treeSize, root) of fhirgate's append-only
/// RFC 6962 / RFC 9162 audit log. Each new checkpoint must come with a
/// consistency proof from the previous one, verified here with the SHA-256
/// precompile, so the chain itself refuses a rewritten or forked history.
/// Only tree sizes and Merkle roots are stored: never PHI, never a
/// per-record hash.
/// @dev Hashing is RFC 6962: node = SHA-256(0x01 || left || right). The proof
/// format and the verification algorithm are those of RFC 9162 §2.1.4.2 as
/// implemented by github.com/transparency-dev/merkle/proof.VerifyConsistency.
///
/// Storage layout, chosen for the anchoring transaction's gas:
///  - `_head` packs the anchorer, the latest tree size and the checkpoint
///    count in one slot: one cold SLOAD gives both access control and state,
///    and one warm SSTORE updates it.
///  - `_roots[treeSize]` holds each root: the one unavoidable new slot per
///    checkpoint (22,100 gas). The latest root is not stored twice; it is
///    `_roots[_head.size]`.
///  - `_log` holds (treeSize, timestamp) of checkpoint i in the 128-bit half
///    (i & 1) of slot i >> 1, so a new slot is paid every other checkpoint.
///    `rootAt` finds a timestamp by binary search (sizes strictly increase).
contract AuditAnchor {
    struct Head {
        address anchorer;
        uint64 size; // latest anchored tree size, 0 before the first anchor
        uint32 count; // number of anchored checkpoints (overflow reverts: ~680 years at one per 5 s)
    }

    /// @notice The account that may set the anchorer and transfer ownership.
    address public owner;

    Head private _head;
    mapping(uint64 treeSize => bytes32 root) private _roots;
    mapping(uint256 slot => uint256 entries) private _log;

    /// @notice A checkpoint was anchored.
    event Anchored(uint64 indexed treeSize, bytes32 root);
    /// @notice The anchorer changed; address(0) means anchoring is paused.
    event AnchorerChanged(address indexed previousAnchorer, address indexed newAnchorer);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not the anchorer.
    error NotAnchorer(address caller);
    /// @notice Ownership cannot go to address(0): it would lock the contract.
    error ZeroAddress();
    /// @notice treeSize must be larger than the latest anchored size.
    error TreeSizeNotIncreasing(uint64 latestTreeSize, uint64 treeSize);
    /// @notice The zero root is reserved for "unknown" in rootAt.
    error ZeroRoot();
    /// @notice The proof does not have the length RFC 9162 prescribes for
    /// these sizes (0 for the first checkpoint).
    error ProofLengthMismatch(uint256 expected, uint256 actual);
    /// @notice The proof does not reproduce the latest anchored root: the
    /// proof is corrupt or the log's history was rewritten.
    error PreviousRootMismatch(bytes32 computed);
    /// @notice The proof does not lead to the submitted root.
    error RootMismatch(bytes32 computed);
    /// @notice checkpointAt was asked for an index past the last checkpoint.
    error NoSuchCheckpoint(uint256 index);

    /// @param initialAnchorer the account allowed to anchor (address(0):
    /// paused until the owner sets one). The deployer becomes the owner.
    constructor(address initialAnchorer) {
        owner = msg.sender;
        _head.anchorer = initialAnchorer;
        emit OwnershipTransferred(address(0), msg.sender);
        emit AnchorerChanged(address(0), initialAnchorer);
    }

    modifier onlyOwner() {
        require(msg.sender == owner, NotOwner(msg.sender));
        _;
    }

    /// @notice The account allowed to call anchor.
    function anchorer() external view returns (address) {
        return _head.anchorer;
    }

    /// @notice Sets the anchorer. address(0) pauses anchoring.
    function setAnchorer(address newAnchorer) external onlyOwner {
        emit AnchorerChanged(_head.anchorer, newAnchorer);
        _head.anchorer = newAnchorer;
    }

    /// @notice Transfers ownership (one step; the new owner must be able to
    /// send transactions).
    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), ZeroAddress());
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Anchors the checkpoint (treeSize, root).
    /// @param consistencyProof RFC 9162 consistency proof from the latest
    /// anchored checkpoint to this one, as produced by
    /// transparency-dev/merkle (proof.Consistency + Nodes.Rehash). Must be
    /// empty for the first checkpoint: every tree extends the empty tree.
    function anchor(uint64 treeSize, bytes32 root, bytes32[] calldata consistencyProof) external {
        Head memory h = _head;
        require(msg.sender == h.anchorer, NotAnchorer(msg.sender));
        require(treeSize > h.size, TreeSizeNotIncreasing(h.size, treeSize));
        require(root != bytes32(0), ZeroRoot());
        if (h.size == 0) {
            require(consistencyProof.length == 0, ProofLengthMismatch(0, consistencyProof.length));
        } else {
            _verifyConsistency(h.size, treeSize, _roots[h.size], root, consistencyProof);
        }

        _roots[treeSize] = root;
        uint256 entry = (uint256(treeSize) << 64) | uint64(block.timestamp);
        if (h.count & 1 == 0) {
            _log[h.count >> 1] = entry;
        } else {
            _log[h.count >> 1] |= entry << 128;
        }
        _head = Head(h.anchorer, treeSize, h.count + 1);
        emit Anchored(treeSize, root);
    }

    /// @notice The latest anchored checkpoint; (0, 0) before the first one.
    function latest() external view returns (uint64 treeSize, bytes32 root) {
        treeSize = _head.size;
        root = _roots[treeSize];
    }

    /// @notice The root anchored for treeSize and the timestamp of the block
    /// that anchored it; (0, 0) if that size was never anchored.
    function rootAt(uint64 treeSize) external view returns (bytes32 root, uint64 timestamp) {
        root = _roots[treeSize];
        if (root == bytes32(0)) return (0, 0);
        uint256 lo = 0;
        uint256 hi = _head.count;
        while (lo < hi) {
            uint256 mid = (lo + hi) >> 1;
            uint256 e = _entry(mid);
            uint64 size = uint64(e >> 64);
            if (size == treeSize) return (root, uint64(e));
            if (size < treeSize) lo = mid + 1;
            else hi = mid;
        }
        // Unreachable: every stored root has a log entry.
        assert(false);
    }

    /// @notice Number of anchored checkpoints.
    function checkpointCount() external view returns (uint256) {
        return _head.count;
    }

    /// @notice Checkpoint number index (0 = first) in anchoring order.
    function checkpointAt(uint256 index) external view returns (uint64 treeSize, bytes32 root, uint64 timestamp) {
        require(index < _head.count, NoSuchCheckpoint(index));
        uint256 e = _entry(index);
        treeSize = uint64(e >> 64);
        timestamp = uint64(e);
        root = _roots[treeSize];
    }

    function _entry(uint256 i) private view returns (uint256) {
        return uint128(_log[i >> 1] >> ((i & 1) << 7));
    }

    /// @dev Port of transparency-dev/merkle proof.VerifyConsistency for
    /// 0 < size1 < size2. The proof is the suffix, from level
    /// trailingZeros(size1) up, of the inclusion proof of leaf size1-1 in the
    /// tree of size2, preceded by the root of the perfect subtree that ends
    /// at size1 unless size1 is a power of two (then that subtree is root1).
    function _verifyConsistency(uint64 size1, uint64 size2, bytes32 root1, bytes32 root2, bytes32[] calldata proof)
        private
        view
    {
        unchecked {
            uint256 index = size1 - 1;
            uint256 inner = _bitLength(index ^ (size2 - 1)); // levels below where paths to size1-1 and size2-1 split
            uint256 border = _popCount(index >> inner); // left siblings above the split
            uint256 shift = _bitLength(size1 & (~uint256(size1) + 1)) - 1; // trailing zeros of size1
            inner -= shift; // shift < inner because size1 < size2
            uint256 mask = index >> shift; // 0 iff size1 is a power of two

            uint256 start = mask == 0 ? 0 : 1;
            require(
                proof.length == start + inner + border, ProofLengthMismatch(start + inner + border, proof.length)
            );

            // h1 rebuilds root1 from left siblings only; h2 rebuilds root2.
            bytes32 h1 = mask == 0 ? root1 : proof[0];
            bytes32 h2 = h1;
            // Assembly, because a Solidity loop here spends more gas on bounds
            // checks, jumps and memory than the SHA-256 precompile itself
            // (measured: ~1,600 gas per anchor; a Yul function per node
            // still costs ~1,000 more than this inlined form).
            // Each node is SHA-256(0x01 || left || right): the preimage is
            // built at the free memory pointer, used as scratch (never
            // allocated, so memory does not grow), output at 0x00.
            assembly ("memory-safe") {
                let m := mload(0x40)
                mstore8(m, 0x01)
                let left := add(m, 0x01)
                let right := add(m, 0x21)
                let ok := 1 // the precompile fails only when out of gas
                let sibling := add(proof.offset, shl(5, start))
                // Inner levels: bit i of mask set = the sibling is on the left,
                // and only then does it belong to root1's tree too.
                for { let i := 0 } lt(i, inner) { i := add(i, 1) } {
                    let s := calldataload(sibling)
                    sibling := add(sibling, 0x20)
                    switch and(shr(i, mask), 1)
                    case 0 {
                        mstore(left, h2)
                        mstore(right, s)
                        ok := and(ok, staticcall(gas(), 0x02, m, 0x41, 0x00, 0x20))
                        h2 := mload(0x00)
                    }
                    default {
                        mstore(left, s)
                        mstore(right, h1)
                        ok := and(ok, staticcall(gas(), 0x02, m, 0x41, 0x00, 0x20))
                        h1 := mload(0x00)
                        mstore(right, h2)
                        ok := and(ok, staticcall(gas(), 0x02, m, 0x41, 0x00, 0x20))
                        h2 := mload(0x00)
                    }
                }
                // Border levels: every sibling is on the left.
                for { let end := add(proof.offset, shl(5, proof.length)) } lt(sibling, end) {
                    sibling := add(sibling, 0x20)
                } {
                    mstore(left, calldataload(sibling))
                    mstore(right, h1)
                    ok := and(ok, staticcall(gas(), 0x02, m, 0x41, 0x00, 0x20))
                    h1 := mload(0x00)
                    mstore(right, h2)
                    ok := and(ok, staticcall(gas(), 0x02, m, 0x41, 0x00, 0x20))
                    h2 := mload(0x00)
                }
                if iszero(ok) { revert(0, 0) }
            }
            require(h1 == root1, PreviousRootMismatch(h1));
            require(h2 == root2, RootMismatch(h2));
        }
    }

    /// @dev Number of bits needed to represent x (x < 2^64).
    function _bitLength(uint256 x) private pure returns (uint256 n) {
        unchecked {
            if (x >> 32 != 0) { x >>= 32; n += 32; }
            if (x >> 16 != 0) { x >>= 16; n += 16; }
            if (x >> 8 != 0) { x >>= 8; n += 8; }
            if (x >> 4 != 0) { x >>= 4; n += 4; }
            if (x >> 2 != 0) { x >>= 2; n += 2; }
            if (x >> 1 != 0) { x >>= 1; n += 1; }
            n += x;
        }
    }

    /// @dev Number of set bits of x (x < 2^64), SWAR.
    function _popCount(uint256 x) private pure returns (uint256) {
        unchecked {
            x -= (x >> 1) & 0x5555555555555555;
            x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f;
            return ((x * 0x0101010101010101) >> 56) & 0xff;
        }
    }
}
