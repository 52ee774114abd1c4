// SPDX-License-Identifier: MIT
// Test fixture for package chain. Compiled with solcjs 0.8.37 (npm solc@0.8.37),
// optimizer on (200 runs), evmVersion shanghai; output in Store.bin and Store.abi.
// Regenerate: see compile.js next to this file.
pragma solidity 0.8.37;

contract Store {
    uint256 public value;

    event Stored(address indexed by, uint256 value);

    constructor(uint256 initial) {
        value = initial;
    }

    function set(uint256 v) external {
        require(v != 13, "unlucky");
        value = v;
        emit Stored(msg.sender, v);
    }
}
