// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

/// @title RecordStore: the one-transaction-per-record approach, for comparison
/// @notice The original research system (Truffle + Ganache + MetaMask) stored
/// each medical record through a contract call: one transaction per record.
/// This contract is that per-record write reduced to its core, so that
/// `fhirbench ganache` can measure what the approach costs: the record's
/// content hash is stored under its id (one new storage slot) and an event
/// names the record and its patient. It is not part of fhirgate, which puts
/// no per-record data on chain.
contract RecordStore {
    /// keccak256(recordId) => SHA-256 of the record's content.
    mapping(bytes32 => bytes32) public contentHashOf;

    event RecordAdded(bytes32 indexed recordKey, address indexed patient, string recordId, bytes32 contentHash);

    error ZeroHash();
    error RecordExists(bytes32 recordKey);

    /// @notice Stores a record's content hash; a record id is stored once.
    function addRecord(string calldata recordId, bytes32 contentHash, address patient) external {
        if (contentHash == bytes32(0)) revert ZeroHash();
        bytes32 key = keccak256(bytes(recordId));
        if (contentHashOf[key] != bytes32(0)) revert RecordExists(key);
        contentHashOf[key] = contentHash;
        emit RecordAdded(key, patient, recordId, contentHash);
    }
}
