// Package consent mirrors the ConsentRegistry contract into the gateway's
// Casbin consent policy, projects each grant as a read-only FHIR Consent,
// and relays patients' EIP-712-signed grants and revocations gas-free.
//
// # Follower
//
// A Follower reads ConsentGranted and ConsentRevoked logs and applies
// them, in (block, log index) order, once their block has
// Config.Confirmations confirmations (1: mined). It keeps, in its own
// keyspace of the store (store.ExtensionPrefix("consent")):
//
//   - one row per (patient wallet, grantee hash, scope hash): the grant as
//     the contract holds it (expiry; revoked or not; where it last changed);
//   - an undo record per recent block with events (the rows as they were
//     before it), for the last ReorgWindow blocks;
//   - the cursor: the last applied block's number and hash, and the count
//     of events applied.
//
// A block's rows, undo record and cursor are written in one atomic Apply,
// conditional on the cursor written before: after a crash the state is the
// state after some whole block, and the follower continues from the
// block after it, so no event is lost or applied twice. On start it reads
// the rows back (not the chain's history: start time grows with the
// number of grants, not with the chain's length) and rebuilds the policy
// mirror.
//
// Reorgs: near the head the follower reads block by block, checking each
// block's parent hash against the block it applied before and reading
// logs by block hash. When a block it applied leaves the chain, it finds
// the newest applied block still canonical, restores every row changed
// above it from the undo records, and applies the new branch. A reorg
// deeper than the kept history rebuilds the state from the registry's
// deployment block.
//
// Identities: the chain holds wallets and hashes, never identifiers. The
// gateway maps wallets to patients (SetPatient, or a PatientResolver) and
// tells the follower which grantees exist (AddGrantees: it hashes each
// reference); every valid scope "<Type>.<perms>" is precomputed (4,557).
// A grant whose patient or grantee is not known yet waits, unapplied but
// kept, and takes effect when they become known. With Config.Directory
// (the FHIR store), the follower learns them itself: SeedIdentities reads
// every Patient's wallets and every Practitioner and Organization, and
// Run then follows the store's unique-name feed (store.UniqueChanges: an
// entry in the same commit as every wallet linked or unlinked), one read
// of its sequence every 200 ms, so a wallet unlinked through any replica
// stops speaking for the patient on every replica within that time;
// Noticed reads it at once after this replica's own writes. Grantees
// created through another replica are found by their hash's preimage,
// which the creating replica keeps in the shared keyspace.
//
// Several replicas: every replica of a deployment follows the chain into
// the same keyspace, each into its own policy mirror. Each block's state
// is written once, by the first replica whose commit (conditional on the
// stored cursor) succeeds; the others find the stored cursor moved, and
// adopt that state in memory (it is a function of the chain); a replica
// behind never writes, so the stored cursor never moves back. A follower
// finding the keyspace holding another registry's state that a running
// follower keeps current (its heartbeat) refuses to start
// (ErrKeyspaceInUse) rather than wipe it.
//
// Policy: each live grant is policy.Grants.Set(Patient, Grantee, Scope,
// Expiry): a grouping link in the patient's domain (DESIGN.md decision 5).
// The policy judges expiry by wall clock, to the second (a grant is in
// force while now < expiry, the contract's rule); type(uint64).max is
// policy.Forever.
//
// Lag: Health returns nil while the follower has been in step with the
// chain (every block up to head − confirmations + 1 applied) at some
// moment within the last MaxLag; otherwise ErrBehind with a reason.
// Plugged into policy.Decider.Health, it makes consent-dependent access
// fail closed while the mirror may be stale (node down, follower stuck or
// catching up).
//
// # Projection
//
// Every grant whose patient and grantee are known is projected as an R4
// Consent (status active, or inactive once revoked or expired; patient;
// provision.actor the grantee; provision.period the grant's time and
// expiry; provision.class and action from the scope; identifier and
// sourceReference pointing at the registry and transaction). Config.Project
// receives them whenever they change, and deletions when a grant leaves
// the chain.
//
// A Consent is projected once per chain event however many replicas
// follow: by the replica whose commit claimed the block. The others check
// after 5 s that it did (the projection record in the shared keyspace) and
// project it themselves if not (the claimant died first); writes of the
// same content make no new version, so a late duplicate costs nothing.
//
// # Relay
//
// A Relay checks a SignedGrant or SignedRevoke offline (domain, fields,
// deadline, expiry, the patient's signature, known scope and grantee) and
// against the chain (next nonce; that a revoked grant exists), then sends
// grantBySig or revokeBySig from the gateway's key and returns the
// transaction hash at once; Status follows it (pending, mined, confirmed,
// failed). DecodeRelayRequest parses the HTTP body.
//
// No PHI goes on chain: transactions carry wallet addresses, hashes of
// grantee references and scopes, times and signatures.
package consent
