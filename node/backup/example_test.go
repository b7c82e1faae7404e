package backup_test

import (
	"bytes"
	"fmt"

	"github.com/gossipmesh/gossipmesh/node/backup"
)

func Example() {
	var file bytes.Buffer
	recs := func(yield func(backup.Record, error) bool) {
		_ = yield(backup.Record{Key: []byte("a"), State: []byte("state of a")}, nil) &&
			yield(backup.Record{Key: []byte("b"), State: []byte("state of b")}, nil)
	}
	if _, err := backup.Write(&file, recs); err != nil {
		panic(err)
	}

	// Restore verifies the whole input before the first merge call.
	n, err := backup.Restore(&file, backup.RestoreOptions{}, func(batch []backup.Record) error {
		for _, r := range batch {
			fmt.Printf("merge %s = %s\n", r.Key, r.State)
		}
		return nil
	})
	fmt.Println(n, err)
	// Output:
	// merge a = state of a
	// merge b = state of b
	// 2 <nil>
}
