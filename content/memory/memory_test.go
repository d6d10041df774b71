package memory_test

import (
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/memory"
)

func TestSuite(t *testing.T) {
	contenttest.Suite(t, func(t *testing.T) content.Store { return memory.New() })
}
