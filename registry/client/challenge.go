package client

import (
	"strings"
)

// Challenge is one authentication challenge of a WWW-Authenticate header
// (RFC 9110 section 11.6.1): a scheme and its parameters.
type Challenge struct {
	// Scheme is lowercase: "basic" or "bearer" for the schemes registries use.
	Scheme string
	// Params holds the auth-params, names lowercased, values unquoted
	// ("realm", "service", "scope", "error").
	Params map[string]string
}

// Scopes returns the space-separated scopes of a bearer challenge's scope
// parameter.
func (c Challenge) Scopes() []string { return strings.Fields(c.Params["scope"]) }

// ParseChallenges parses the values of WWW-Authenticate headers. A header
// may hold several challenges separated by commas ("Basic realm=x, Bearer
// realm=y"), and quoted parameter values may hold commas and escaped quotes
// (scope="repository:a:pull,push"). Malformed parts are skipped: the result
// holds the challenges that could be read, in order.
func ParseChallenges(headers []string) []Challenge {
	var out []Challenge
	for _, h := range headers {
		out = append(out, parseChallengeHeader(h)...)
	}
	return out
}

func parseChallengeHeader(s string) []Challenge {
	var out []Challenge
	var cur *Challenge
	p := headerParser{s: s}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			break
		}
		tok := p.token()
		if tok == "" {
			// Not a token: skip to the next comma.
			p.skipPast(',')
			continue
		}
		p.skipSpace()
		if p.peek() == '=' {
			// An auth-param of the current challenge, or token68 padding.
			p.i++
			p.skipSpace()
			var val string
			if p.peek() == '"' {
				var ok bool
				val, ok = p.quoted()
				if !ok {
					return out // unterminated quote: nothing after it can be trusted
				}
			} else {
				val = p.token()
				// token68 may end in '=' padding ("Negotiate abc=="), not a parameter.
				for p.peek() == '=' {
					p.i++
				}
			}
			if cur != nil {
				name := strings.ToLower(tok)
				if _, dup := cur.Params[name]; !dup {
					cur.Params[name] = val
				}
			}
			p.skipSpace()
			if !p.done() && p.peek() != ',' {
				p.skipPast(',')
			}
			continue
		}
		// A new challenge: the scheme, then parameters or a token68.
		out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
		cur = &out[len(out)-1]
	}
	return out
}

// headerParser walks a header value.
type headerParser struct {
	s string
	i int
}

func (p *headerParser) done() bool { return p.i >= len(p.s) }

func (p *headerParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *headerParser) skipSpace() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *headerParser) skipSpaceAndCommas() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *headerParser) skipPast(c byte) {
	for !p.done() {
		if p.s[p.i] == '"' {
			if _, ok := p.quoted(); !ok {
				return
			}
			continue
		}
		p.i++
		if p.s[p.i-1] == c {
			return
		}
	}
}

// token reads an RFC 9110 token (tchar+), plus the characters of token68
// ("-._~+/").
func (p *headerParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string at p.i, unescaping quoted pairs.
func (p *headerParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), true
		case '\\':
			p.i++
			if p.done() {
				return "", false
			}
			c = p.s[p.i]
		}
		b.WriteByte(c)
		p.i++
	}
	return "", false
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0
}
