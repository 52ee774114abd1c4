// Package bulk runs FHIR Bulk Data exports (HL7 FHIR Bulk Data Access IG
// v2, export.html): a kick-off records a job in the store, the replica
// that took it streams the resources the caller may read from the store's
// scans into NDJSON files kept in the store (in blocks), and any replica
// answers status polls, downloads and cancels from there. A job is run
// under a store lease of its own: if its replica dies, another one (or the
// same gateway restarted) takes it over and resumes from the last block it
// committed. Everything a finished export made available is audited (one
// AuditEvent per patient whose data it holds, and one for the export with
// the hash of its manifest, which lists each file's hash) before its
// manifest is served.
//
// The HTTP side (parameters, statuses, OperationOutcomes) is fhir/rest's;
// this package answers with sentinel errors.
package bulk

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Errors (errors.Is).
var (
	// ErrNotFound: no such job, or not the caller's (the same answer).
	ErrNotFound = store.ErrNotFound
	// ErrNotReady: the job has not completed; its files are not served.
	ErrNotReady = errors.New("the export has not completed")
	// ErrFailed wraps the reason a job failed.
	ErrFailed = errors.New("the export failed")
	// ErrBusy: the caller already has Config.MaxJobs exports running.
	ErrBusy = errors.New("too many exports in progress")
)

// Level is what a kick-off exports.
type Level string

// The kick-off endpoints.
const (
	System  Level = "system"  // [base]/$export
	Patient Level = "patient" // [base]/Patient/$export
	Group   Level = "group"   // [base]/Group/[id]/$export
)

// Request is one kick-off, as fhir/rest parsed it.
type Request struct {
	Level Level `json:"level"`
	// Members are the patients of the Group ("Patient/<id>"), for a group
	// export.
	Members []string `json:"members,omitempty"`
	// Patients limits a Patient or Group export to these patients
	// ("Patient/<id>", the patient parameter); empty: no limit.
	Patients []string `json:"patients,omitempty"`
	// Types limits the export to these types (_type); empty: every type
	// the caller's scopes allow.
	Types []string `json:"types,omitempty"`
	// TypeFilters are the _typeFilter searches ("Type?params", checked
	// at the kick-off): a resource of a type they name is exported only
	// if it matches one of them.
	TypeFilters []string `json:"typeFilters,omitempty"`
	// Since keeps resources changed at or after it (_since); zero: all.
	Since time.Time `json:"since,omitzero"`
	// URL is the kick-off request as the manifest's request names it.
	URL string `json:"url"`
	// Base is the FHIR base the file URLs start with.
	Base string `json:"base"`
}

// Job states.
const (
	stateRunning  = "running"  // queued or running (whoever holds its lease runs it)
	stateComplete = "complete" // the manifest is served
	stateFailed   = "failed"
	stateDeleting = "deleting" // cancelled or expired: its data is being deleted
)

// job is the record of one export, kept under jobKey and rewritten with
// every block the runner commits (its progress).
type job struct {
	ID        string           `json:"id"`
	Principal policy.Principal `json:"principal"`
	Req       Request          `json:"request"`
	State     string           `json:"state"`
	Created   time.Time        `json:"created"`
	// TxTime is the instant the export reads the store as of (the
	// manifest's transactionTime).
	TxTime  time.Time `json:"transactionTime"`
	Expires time.Time `json:"expires"`
	Error   string    `json:"error,omitempty"`
	// Types are the types to export, in order; TypeIdx the one being
	// read, After the last id of it already in a committed block.
	Types   []string `json:"types"`
	TypeIdx int      `json:"typeIdx"`
	After   string   `json:"after,omitempty"`
	Written int64    `json:"written"`
	// Files are the completed files; Cur the one being written.
	Files []file `json:"files,omitempty"`
	Cur   *file  `json:"cur,omitempty"`
	// DelFrom is the number of the first deleted file (a _since export
	// lists deletions after its output files; 0: not begun); DelDone
	// says they are all written.
	DelFrom int  `json:"delFrom,omitempty"`
	DelDone bool `json:"delDone,omitempty"`
	// Manifest is the completion manifest, served as these bytes; its
	// SHA-256 is in the export's AuditEvent.
	Manifest    []byte `json:"manifest,omitempty"`
	ManifestSHA string `json:"manifestSha256,omitempty"`
	Patients    int    `json:"patients,omitempty"`
}

// file is one NDJSON output file: Blocks blocks under blockKey.
type file struct {
	N      int    `json:"n"` // 1, 2, ... across the job
	Type   string `json:"type"`
	Count  int    `json:"count"`
	Blocks int    `json:"blocks"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"` // hex, once complete
	// Hash is the SHA-256 state of an open file (resumable).
	Hash []byte `json:"hash,omitempty"`
	// Enc is how its blocks are kept: "zstd" (each block one zstd frame),
	// or "" (as served; jobs of gateways before blocks were compressed).
	// Bytes, SHA256 and Hash are of the NDJSON as served.
	Enc string `json:"enc,omitempty"`
}

// Keys under store.ExtensionPrefix("bulk"):
//
//	'j' id                   -> the job record (JSON)
//	'b' id 0x00 file block   -> one block of an NDJSON file (numbers 4 bytes big-endian)
//	'p' id 0x00 ref          -> "" : a patient whose data the export holds
//	'd' id 0x00 Type/id      -> "" : a deletion the export lists (_since)
var prefix = store.ExtensionPrefix("bulk")

func jobKey(id string) []byte { return append(append(append([]byte(nil), prefix...), 'j'), id...) }

func jobsPrefix() []byte { return append(append([]byte(nil), prefix...), 'j') }

func dataPrefix(tag byte, id string) []byte {
	k := append(append([]byte(nil), prefix...), tag)
	k = append(k, id...)
	return append(k, 0)
}

func blockKey(id string, fileN, block int) []byte {
	k := dataPrefix('b', id)
	k = binary.BigEndian.AppendUint32(k, uint32(fileN))
	return binary.BigEndian.AppendUint32(k, uint32(block))
}

func patientKey(id, ref string) []byte { return append(dataPrefix('p', id), ref...) }

func deletedKey(id, ref string) []byte { return append(dataPrefix('d', id), ref...) }

// owns reports whether p may see job j: the principal who kicked it off
// (same subject and role), or an administrator.
func (j *job) owns(p *policy.Principal) bool {
	if p == nil {
		return false
	}
	return p.Role == policy.RoleAdmin || (p.Subject == j.Principal.Subject && p.Role == j.Principal.Role && p.Subject != "")
}
