//go:build unix

package main

import "syscall"

// restrictUmask makes every file the process creates private to its user.
func restrictUmask() { syscall.Umask(0o077) }
