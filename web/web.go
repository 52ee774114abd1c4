// Package web is the patient, practitioner and regulator portal: static
// pages embedded in the binary (no CDN, no external fonts or scripts), on
// top of the FHIR API, Sign-In With Ethereum, the on-chain consent and the
// anchored log. The gateway serves them at / (portal) and /verify
// (regulator page).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the portal's files: index.html, verify.html and their assets.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return sub
}
