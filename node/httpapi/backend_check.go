package httpapi

import "github.com/gossipmesh/gossipmesh/node"

// The real node is the Backend the daemon serves.
var _ Backend = (*node.Node)(nil)
