package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/gossipmesh/gossipmesh/node/httpapi"
	"github.com/gossipmesh/gossipmesh/node/httpapi/client"
	"github.com/gossipmesh/gossipmesh/node/httpapi/httpapitest"
)

func Example() {
	// meshd serves its API on 127.0.0.1:7700; here an in-memory stand-in.
	srv := httptest.NewServer(httpapi.NewHandler(httpapitest.NewFake(), httpapi.Options{}))
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Put(ctx, []byte("greeting"), []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	v, _ := c.Get(ctx, []byte("greeting"))
	fmt.Printf("%s\n", v)

	n, _ := c.Incr(ctx, []byte("visits"), 5)
	fmt.Println(n)

	_, err = c.Get(ctx, []byte("absent"))
	fmt.Println(errors.Is(err, client.ErrNotFound), err)

	_, err = c.Get(ctx, []byte("visits"))
	fmt.Println(errors.Is(err, client.ErrWrongKind))
	// Output:
	// hello
	// 5
	// true key not found: "absent"
	// true
}
