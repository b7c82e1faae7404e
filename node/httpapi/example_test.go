package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/httpapitest"
)

func Example() {
	// A *node.Node in meshd; the in-memory fake here.
	srv := httptest.NewServer(httpapi.NewHandler(httpapitest.NewFake(), httpapi.Options{}))
	defer srv.Close()

	req, _ := http.NewRequest("PUT", srv.URL+"/v1/kv/greeting", strings.NewReader("hello"))
	res, _ := http.DefaultClient.Do(req)
	res.Body.Close()
	fmt.Println(res.StatusCode)

	res, _ = http.Get(srv.URL + "/v1/kv/greeting")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(string(body))

	res, _ = http.Get(srv.URL + "/v1/kv/absent")
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(res.StatusCode, " ", string(body))
	// Output:
	// 204
	// {"key":"greeting","value":"hello","value_b64":"aGVsbG8="}
	// 404 {"error":"key not found: \"absent\"","code":"not_found"}
}
