package server_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/lading-oci/lading/registry/server"
	"github.com/lading-oci/lading/registry/storage"
)

// Serve a registry on a directory.
func ExampleNew() {
	root, _ := os.MkdirTemp("", "registry")
	defer os.RemoveAll(root)
	st, err := storage.Open(context.Background(), root, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(server.New(st, server.Options{Metrics: server.NewMetrics()}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v2/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Docker-Distribution-API-Version"))
	// Output: 200 registry/2.0
}
