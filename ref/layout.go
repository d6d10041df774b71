package ref

// MaxLayoutTagLength bounds a layout tag: the grammar has no limit, but a
// name is one annotation value in index.json.
const MaxLayoutTagLength = 1024

// ValidLayoutTag reports whether s is a valid tag in an OCI image layout:
// an org.opencontainers.image.ref.name value matching the grammar of
// image-spec annotations.md,
//
//	ref       ::= component ("/" component)*
//	component ::= alphanum (separator alphanum)*
//	alphanum  ::= [A-Za-z0-9]+
//	separator ::= [-._:@+] | "--"
//
// at most MaxLayoutTagLength bytes long. Every registry tag that starts with
// a letter or digit and has no two separators in a row is one; "team/app",
// "v1.0:debug" and "1.0+build.5" are too.
func ValidLayoutTag(s string) bool {
	if s == "" || len(s) > MaxLayoutTagLength {
		return false
	}
	// prev: 'a' after an alphanum, 's' after a separator, '-' after a
	// single dash (which "--" may continue), '/' after a slash or at the
	// start.
	prev := byte('/')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			prev = 'a'
		case c == '/':
			if prev != 'a' {
				return false
			}
			prev = '/'
		case c == '-' && prev == '-':
			prev = 's' // "--" is one separator
		case c == '-':
			if prev != 'a' {
				return false
			}
			prev = '-'
		case c == '.' || c == '_' || c == ':' || c == '@' || c == '+':
			if prev != 'a' {
				return false
			}
			prev = 's'
		default:
			return false
		}
	}
	return prev == 'a'
}
