// Command guest is a WAGI guest inside the ferry module itself: the
// builder's tests and benchmarks build it with the repository's go.mod, and
// it imports a package of the module to exercise transitive hashing.
package main

import (
	"fmt"

	"github.com/ferry-wasm/ferry/targets/host/abi"
)

func main() {
	fmt.Print("Content-Type: text/plain\n\n")
	fmt.Println("hello from", abi.HostModule)
}
