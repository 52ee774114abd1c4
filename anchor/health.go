package anchor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrCannotAnchor: the gateway cannot anchor checkpoints (Log.Health says
// why). Anchorers wrap it, through ErrNoRole, ErrNoFunds or directly,
// when the chain refuses them for a reason that retrying will not cure.
var ErrCannotAnchor = errors.New("anchor: cannot anchor")

// Reasons an Anchorer cannot anchor (Preflighter, Submit).
var (
	// ErrNoRole: the contract does not let the gateway's account anchor
	// (its owner gave the anchorer role to another account, or paused).
	ErrNoRole = fmt.Errorf("%w: the gateway's account is not the contract's anchorer", ErrCannotAnchor)
	// ErrNoFunds: the gateway's account cannot pay for an anchoring
	// transaction.
	ErrNoFunds = fmt.Errorf("%w: the gateway's account cannot pay for an anchoring transaction", ErrCannotAnchor)
)

// Preflighter is implemented by Anchorers that can tell, before sending,
// whether an anchoring transaction could succeed: the account holds the
// anchorer role and can pay. The Log asks before it sends and at least
// every Config.PreflightInterval; an error wrapping ErrCannotAnchor stops
// sending (a transaction would only revert or be refused), shows in
// Status.Blocked and fails Health until Preflight passes again. Other
// errors count as the chain being unreachable.
type Preflighter interface {
	Preflight(ctx context.Context) error
}

// The problems Health reports, as the metric's reason label.
const (
	ProblemAlarm    = "alarm"        // the contract and the log disagree
	ProblemNoRole   = "not_anchorer" // the account lost the anchorer role
	ProblemNoFunds  = "no_funds"     // the account cannot pay
	ProblemRefused  = "refused"      // the Anchorer refuses for another reason
	ProblemFailures = "failing"      // MaxFailures transactions failed in a row
	ProblemStalled  = "stalled"      // a checkpoint waits longer than StallAfter
)

// Problems lists every problem code, for metrics.
var Problems = []string{ProblemAlarm, ProblemNoRole, ProblemNoFunds, ProblemRefused, ProblemFailures, ProblemStalled}

// Health returns nil while the log is being anchored, and otherwise an
// error wrapping ErrCannotAnchor that says why: the contract and the log
// disagree (Status.Alarm), the Anchorer refuses (Status.Blocked: the
// gateway's account lost the anchorer role or its funds), the last
// MaxFailures anchoring transactions failed (reverted, dropped or refused
// by the node), or the oldest checkpoint waiting for the chain has waited
// more than StallAfter (the chain is unreachable or does not include the
// transactions). A log without Anchorer is healthy: anchoring is off by
// configuration, and proofs say so; so is a replica that does not hold
// the anchoring lease (Config.Lease): it is not the one anchoring.
func (l *Log) Health() error {
	code, msg := l.problem()
	if code == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCannotAnchor, msg)
}

// problem is Health's verdict: a Problems code ("" when healthy) and the
// explanation.
func (l *Log) problem() (code, msg string) {
	if l.a == nil || !l.IsAnchorer() {
		// Off, or another replica anchors: its problems are its own
		// (its /readyz and metrics say them); this replica serves.
		return "", ""
	}
	s := l.Status()
	switch {
	case s.Alarm != "":
		return ProblemAlarm, s.Alarm
	case s.Blocked != "":
		code := ProblemRefused
		switch {
		case errors.Is(l.blockedErr(), ErrNoRole):
			code = ProblemNoRole
		case errors.Is(l.blockedErr(), ErrNoFunds):
			code = ProblemNoFunds
		}
		return code, s.Blocked
	case s.Failures >= l.cfg.MaxFailures:
		return ProblemFailures, fmt.Sprintf("the last %d anchoring transactions failed; the last: %s", s.Failures, s.LastFailure)
	}
	if age := l.oldestWait(); age > l.cfg.StallAfter {
		why := "the chain has not included it"
		if s.ChainError != "" {
			why = "the chain is unreachable: " + s.ChainError
		}
		return ProblemStalled, fmt.Sprintf("a checkpoint has waited %s to be anchored (%s)", age.Round(time.Second), why)
	}
	return "", ""
}

func (l *Log) blockedErr() error {
	l.statMu.Lock()
	defer l.statMu.Unlock()
	return l.blocked
}

// oldestWait is how long the oldest checkpoint not yet anchored has been
// waiting, counted from this process's start at the earliest (a gateway
// that was down for a day is not stalled the moment it starts).
func (l *Log) oldestWait() time.Duration {
	l.statMu.Lock()
	oldest := l.waitingSince
	l.statMu.Unlock()
	if oldest.IsZero() {
		return 0
	}
	if oldest.Before(l.opened) {
		oldest = l.opened
	}
	return l.cfg.Now().Sub(oldest)
}

// noteWaiting records that a checkpoint cut at cut waits to be anchored
// (maybeCut; the chain loop recomputes the oldest each round).
func (l *Log) noteWaiting(cut time.Time) {
	l.statMu.Lock()
	if l.waitingSince.IsZero() || cut.Before(l.waitingSince) {
		l.waitingSince = cut
	}
	l.statMu.Unlock()
}

// preflight asks a Preflighter Anchorer whether anchoring can work, when
// something is to be sent or PreflightInterval has passed since the last
// time. It reports false when sending must wait.
func (l *Log) preflight(ctx context.Context, force bool) (bool, error) {
	pf, ok := l.a.(Preflighter)
	if !ok {
		return true, nil
	}
	now := l.cfg.Now()
	l.statMu.Lock()
	blocked, last := l.blocked, l.lastPreflight
	l.statMu.Unlock()
	if !force && blocked == nil && now.Sub(last) < l.cfg.PreflightInterval {
		return true, nil
	}
	if blocked != nil && !force && now.Sub(last) < l.cfg.ChainPollInterval {
		return false, nil
	}
	err := pf.Preflight(ctx)
	if err != nil && !errors.Is(err, ErrCannotAnchor) {
		return false, fmt.Errorf("checking the anchorer: %w", err)
	}
	l.statMu.Lock()
	l.lastPreflight = now
	was := l.blocked
	l.blocked = err
	if err != nil {
		// Health adds "anchor: cannot anchor: " itself.
		l.stat.Blocked = strings.TrimPrefix(err.Error(), ErrCannotAnchor.Error()+": ")
	} else {
		l.stat.Blocked = ""
	}
	l.statMu.Unlock()
	switch {
	case err != nil && (was == nil || was.Error() != err.Error()):
		l.log.Error("anchor: the gateway cannot anchor; checkpoints stay queued", "err", err)
	case err == nil && was != nil:
		l.log.Info("anchor: the gateway can anchor again")
	}
	return err == nil, nil
}

// failed counts an anchoring transaction that failed.
func (l *Log) failed(size uint64, err error) {
	l.statMu.Lock()
	l.stat.Failures++
	l.stat.LastFailure = fmt.Sprintf("checkpoint %d: %v", size, err)
	n := l.stat.Failures
	l.statMu.Unlock()
	if n == l.cfg.MaxFailures {
		l.log.Error("anchor: anchoring keeps failing", "failures", n, "err", err)
	}
}
