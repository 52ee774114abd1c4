//go:build !unix

package main

// restrictUmask: no umask outside Unix (file modes do not apply).
func restrictUmask() {}
