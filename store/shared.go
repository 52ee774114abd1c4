package store

import "bytes"

// SharedFunc names the reference parameters of a type that are another
// parameter restricted to one target type: Shared("DiagnosticReport",
// "patient") = ("subject", "Patient", true), because patient is
// subject.where(resolve() is Patient). A value of such a parameter that is
// a reference to the target type on this server ("Patient/p1") is the
// base parameter's value too, so it gets no index key of its own: the base
// parameter's key answers for both. Its other values (absolute URLs,
// contained resources) keep keys of their own. Searches, chains, _has,
// _include, _revinclude and _sort on the parameter read both.
//
// Stores written without it hold both keys and are read correctly with
// it; a store written with it must be reindexed before it is served
// without it.
type SharedFunc func(typ, param string) (base, target string, ok bool)

// shared is Options.Shared for a type the store indexes itself.
func (s *Store) shared(typ, param string) (base, target string, ok bool) {
	if s.opts.Shared == nil || s.virtual(typ) != nil {
		return "", "", false
	}
	return s.opts.Shared(typ, param)
}

// refParam is the parameter whose keys hold param's references to
// resources of type refType.
func (s *Store) refParam(typ, param, refType string) string {
	if base, target, ok := s.shared(typ, param); ok && refType == target {
		return base
	}
	return param
}

// refOwner is the parameter whose keys hold param's reference ref.
func (s *Store) refOwner(typ, param, ref string) string {
	if t, _, ok := localRef(ref); ok {
		return s.refParam(typ, param, t)
	}
	return param
}

// sharedKeys matches the index keys that hold values of param: its own,
// and its base parameter's references to the target type when it is
// shared. base is the length of the matched key's parameter prefix.
type sharedKeys struct {
	own, other []byte // parameter prefixes ('i' type param)
	target     string
}

func (s *Store) keysOf(typ, param string) sharedKeys {
	sk := sharedKeys{own: paramPrefix(typ, param)}
	if base, target, ok := s.shared(typ, param); ok {
		sk.other, sk.target = paramPrefix(typ, base), target
	}
	return sk
}

// match reports whether k holds a value of the parameter, and the length
// of its parameter prefix.
func (sk *sharedKeys) match(k []byte) (int, bool) {
	if bytes.HasPrefix(k, sk.own) {
		return len(sk.own), true
	}
	if sk.other == nil || !bytes.HasPrefix(k, sk.other) || len(k) <= len(sk.other) || k[len(sk.other)] != subRefID {
		return 0, false
	}
	rid, rest, ok := readStr(k[len(sk.other)+1:])
	if !ok || rid == "" {
		return 0, false
	}
	t, _, ok := readStr(rest)
	return len(sk.other), ok && t == sk.target
}

// skipShared reports whether iv is a shared parameter's reference that its
// base parameter's key holds.
func skipShared(shared func(param string) (string, string, bool), iv *IndexValue) bool {
	if shared == nil || iv.Kind != IndexReference {
		return false
	}
	_, target, ok := shared(iv.Param)
	if !ok {
		return false
	}
	t, _, local := localRef(iv.Ref)
	return local && t == target
}
