package client

import (
	"net/url"
	"strings"
)

// NextLink returns the target of the rel="next" link among the values of
// Link headers (RFC 8288), resolved against base; nil when there is none or
// it is not a valid URL. Registries page tag lists, catalogs and referrers
// this way: `Link: </v2/r/tags/list?n=100&last=x>; rel="next"`.
func NextLink(base *url.URL, headers []string) *url.URL {
	for _, h := range headers {
		for _, l := range parseLinks(h) {
			for _, rel := range strings.Fields(strings.ToLower(l.params["rel"])) {
				if rel != "next" {
					continue
				}
				u, err := url.Parse(l.target)
				if err != nil {
					return nil
				}
				if base != nil {
					u = base.ResolveReference(u)
				}
				return u
			}
		}
	}
	return nil
}

type link struct {
	target string
	params map[string]string
}

// parseLinks parses one Link header value: comma-separated
// `<URI-reference>; param=value; param="quoted, value"` entries.
func parseLinks(s string) []link {
	var out []link
	p := headerParser{s: s}
	for {
		p.skipSpaceAndCommas()
		if p.done() {
			return out
		}
		if p.peek() != '<' {
			p.skipPast(',')
			continue
		}
		end := strings.IndexByte(s[p.i:], '>')
		if end < 0 {
			return out
		}
		l := link{target: strings.TrimSpace(s[p.i+1 : p.i+end]), params: map[string]string{}}
		p.i += end + 1
		for {
			p.skipSpace()
			if p.peek() != ';' {
				break
			}
			p.i++
			p.skipSpace()
			name := strings.ToLower(p.token())
			p.skipSpace()
			val := ""
			if p.peek() == '=' {
				p.i++
				p.skipSpace()
				if p.peek() == '"' {
					v, ok := p.quoted()
					if !ok {
						return append(out, l)
					}
					val = v
				} else {
					val = p.token()
				}
			}
			if name != "" {
				if _, dup := l.params[name]; !dup {
					l.params[name] = val
				}
			}
		}
		out = append(out, l)
		p.skipSpace()
		if !p.done() && p.peek() != ',' {
			p.skipPast(',')
		}
	}
}
