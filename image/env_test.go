package image_test

import (
	"slices"
	"testing"

	"github.com/lading-oci/lading/image"
)

func TestSetEnv(t *testing.T) {
	env := []string{"PATH=/bin", "HOME=/root"}
	got := image.SetEnv(env, "HOME=/home/u")
	if !slices.Equal(got, []string{"PATH=/bin", "HOME=/home/u"}) {
		t.Fatalf("replace: %v", got)
	}
	if env[1] != "HOME=/root" {
		t.Fatalf("SetEnv changed its argument: %v", env)
	}
	if got := image.SetEnv(env, "TERM=xterm"); !slices.Equal(got, []string{"PATH=/bin", "HOME=/root", "TERM=xterm"}) {
		t.Fatalf("append: %v", got)
	}
	if !image.HasEnv(env, "PATH") || image.HasEnv(env, "PAT") || image.HasEnv(env, "/bin") {
		t.Fatal("HasEnv matches whole keys only")
	}
}
