// Package archive reads and writes the tar files that the oci-archive and
// docker-archive transports keep images in.
//
// Reading indexes an uncompressed tar once (Scan): the name, type, size and
// data offset of every member, from the headers alone, seeking over the
// data. Members are then served with io.SectionReader, so any number of
// them can be read at once and none is ever extracted. Member names are
// untrusted: absolute names, names with a ".." element, duplicates, members
// that run past the end of the file and sparse members are refused, and
// links are followed only within the archive.
//
// A compressed archive (gzip or zstd, detected by magic bytes) is first
// decompressed once into an unnamed temporary file by OpenFile.
//
// Writing (Create) appends members to a temporary file in the target's
// directory (unnamed where the file system supports O_TMPFILE) and links it
// into place only on Commit, so a failed or abandoned write leaves nothing
// behind and never replaces an existing file. A member whose size is not
// known in advance can be written with a placeholder header that is filled
// in at its end, and a member can be rolled back while it is the last one.
package archive
