// Package fhirpath compiles and evaluates the subset of FHIRPath that the
// FHIR R4 search parameter definitions use, over fhirjson trees: paths
// (with choice elements read from their typed JSON keys), "|", "=", "!=",
// "and", "or", "is", "as", indexers, %resource, $this, and the functions
// where, exists, empty, not, first, last, as, ofType, is, resolve and
// extension. Anything else fails to compile with ErrUnsupported, so a
// parameter is never indexed by half-understood rules.
package fhirpath

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// ErrUnsupported marks valid FHIRPath outside the supported subset.
var ErrUnsupported = errors.New("fhirpath: unsupported")

// Expr is a compiled expression. It is immutable and safe for concurrent
// use (evaluate it through a Context per goroutine).
type Expr struct {
	src  string
	root node
}

func (x *Expr) String() string { return x.src }

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

// Compile parses src.
func Compile(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("fhirpath: %w", err)
	}
	p := &parser{toks: toks}
	n, err := p.expr(0)
	if err == nil && p.peek().kind != tokEOF {
		err = p.errorf("unexpected %q", p.peek().text)
	}
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: n}, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("fhirpath: offset %d: %s", p.peek().pos, fmt.Sprintf(format, args...))
}

func (p *parser) unsupported(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrUnsupported, what, p.peek().pos)
}

func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == s
}

func (p *parser) isKeyword(s string) bool {
	t := p.peek()
	return t.kind == tokIdent && !t.quoted && t.text == s
}

func (p *parser) expect(s string) error {
	if !p.isOp(s) {
		return p.errorf("expected %q, found %q", s, p.peek().text)
	}
	p.next()
	return nil
}

// expr parses the lowest precedence level present: or (xor and implies
// are refused).
func (p *parser) expr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isKeyword("or"):
			p.next()
			r, err := p.and(depth)
			if err != nil {
				return nil, err
			}
			l = &logic{l: l, r: r, or: true}
		case p.isKeyword("xor"), p.isKeyword("implies"):
			return nil, p.unsupported("operator " + p.peek().text)
		default:
			return l, nil
		}
	}
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.equality(depth)
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		p.next()
		r, err := p.equality(depth)
		if err != nil {
			return nil, err
		}
		l = &logic{l: l, r: r}
	}
	return l, nil
}

func (p *parser) equality(depth int) (node, error) {
	l, err := p.union(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("=") || p.isOp("!="):
			neg := p.next().text == "!="
			r, err := p.union(depth)
			if err != nil {
				return nil, err
			}
			l = &equality{l: l, r: r, neg: neg}
		case p.isOp("~") || p.isOp("!~") || p.isOp("<") || p.isOp(">") || p.isOp("<=") || p.isOp(">=") ||
			p.isKeyword("in") || p.isKeyword("contains"):
			return nil, p.unsupported("operator " + p.peek().text)
		default:
			return l, nil
		}
	}
}

func (p *parser) union(depth int) (node, error) {
	l, err := p.typeExpr(depth)
	if err != nil {
		return nil, err
	}
	if !p.isOp("|") {
		return l, nil
	}
	u := union{l}
	for p.isOp("|") {
		p.next()
		r, err := p.typeExpr(depth)
		if err != nil {
			return nil, err
		}
		u = append(u, r)
	}
	return u, nil
}

func (p *parser) typeExpr(depth int) (node, error) {
	l, err := p.postfix(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isKeyword("is") || p.isKeyword("as"):
			op := p.next().text
			t, err := p.typeSpec()
			if err != nil {
				return nil, err
			}
			if op == "is" {
				l = chain{l, isFn(t)}
			} else {
				l = chain{l, ofTypeFn(t)}
			}
		case p.isOp("+") || p.isOp("-") || p.isOp("*") || p.isOp("/") || p.isOp("&") ||
			p.isKeyword("div") || p.isKeyword("mod"):
			return nil, p.unsupported("operator " + p.peek().text)
		default:
			return l, nil
		}
	}
}

// typeSpec parses a type name, possibly qualified (FHIR.Quantity).
func (p *parser) typeSpec() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", p.errorf("expected a type name")
	}
	name := t.text
	if p.isOp(".") && p.toks[p.pos+1].kind == tokIdent {
		p.next()
		name += "." + p.next().text
	}
	return normType(name), nil
}

// postfix parses a term followed by .invocations and [index]es.
func (p *parser) postfix(depth int) (node, error) {
	first, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	steps := chain{first}
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tokIdent {
				return nil, p.errorf("expected a name after '.'")
			}
			s, err := p.invocation(t, depth, false)
			if err != nil {
				return nil, err
			}
			steps = append(steps, s)
		case p.isOp("["):
			p.next()
			idx, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			steps = append(steps, &indexFn{idx})
		default:
			if len(steps) == 1 {
				return first, nil
			}
			return steps, nil
		}
	}
}

func (p *parser) term(depth int) (node, error) {
	t := p.next()
	switch t.kind {
	case tokIdent:
		if !t.quoted {
			switch t.text {
			case "true", "false":
				return &literal{fhirjson.Value{Kind: fhirjson.Bool, Str: t.text}}, nil
			}
		}
		return p.invocation(t, depth, true)
	case tokString:
		return &literal{fhirjson.Str(t.text)}, nil
	case tokNumber:
		return &literal{fhirjson.Value{Kind: fhirjson.Number, Str: t.text}}, nil
	case tokVar:
		switch t.text {
		case "$this":
			return thisNode{}, nil
		case "%resource", "%rootResource", "%context":
			return rootNode{}, nil
		}
		return nil, p.unsupported("variable " + t.text)
	case tokOp:
		switch t.text {
		case "(":
			n, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			return n, p.expect(")")
		case "{":
			return emptyNode{}, p.expect("}")
		}
	case tokEOF:
		return nil, p.errorf("unexpected end of expression")
	}
	return nil, p.errorf("unexpected %q", t.text)
}

// invocation compiles a name or function call. At the start of a path
// (atStart) a capitalised name is a type (FHIR element names never are).
func (p *parser) invocation(t token, depth int, atStart bool) (node, error) {
	if !p.isOp("(") {
		if atStart && !t.quoted && t.text[0] >= 'A' && t.text[0] <= 'Z' {
			return typeStep(t.text), nil
		}
		return member(t.text), nil
	}
	p.next()
	name := t.text
	var args []node
	var typeArg string
	switch name {
	case "as", "ofType", "is":
		ts, err := p.typeSpec()
		if err != nil {
			return nil, err
		}
		typeArg = ts
	default:
		for !p.isOp(")") {
			a, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if !p.isOp(",") {
				break
			}
			p.next()
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	arity := func(n ...int) error {
		for _, k := range n {
			if len(args) == k {
				return nil
			}
		}
		return p.errorf("%s() takes %v arguments, got %d", name, n, len(args))
	}
	switch name {
	case "as", "ofType":
		return ofTypeFn(typeArg), nil
	case "is":
		return isFn(typeArg), nil
	case "where":
		return &whereFn{argOrNil(args)}, arity(1)
	case "exists":
		if len(args) == 1 {
			return &existsFn{where: &whereFn{args[0]}}, arity(1)
		}
		return &existsFn{}, arity(0)
	case "empty":
		return &existsFn{empty: true}, arity(0)
	case "not":
		return notFn{}, arity(0)
	case "first", "last":
		return firstFn{last: name == "last"}, arity(0)
	case "resolve":
		return resolveFn{}, arity(0)
	case "extension":
		if err := arity(1); err != nil {
			return nil, err
		}
		lit, ok := args[0].(*literal)
		if !ok || lit.val.Kind != fhirjson.String {
			return nil, p.unsupported("extension() with a non-literal url")
		}
		return extensionFn(lit.val.Str), nil
	}
	return nil, fmt.Errorf("%w: function %s()", ErrUnsupported, strings.TrimSpace(name))
}

func argOrNil(args []node) node {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}
