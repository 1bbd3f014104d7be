// Command api is a WAGI component: a plain Go program that reads the request
// from its environment and stdin and writes a CGI response to stdout.
// ferry builds it with GOOS=wasip1 GOARCH=wasm.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("content-type: application/json")
	fmt.Println()
	fmt.Printf("{\"method\": %q, \"path\": %q}\n", os.Getenv("REQUEST_METHOD"), os.Getenv("PATH_INFO"))
}
