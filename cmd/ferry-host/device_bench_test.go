package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-wasm/ferry/internal/devicetest"
	"github.com/ferry-wasm/ferry/internal/testenv"
	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// BenchmarkDeviceFootprint reports what an edge device pays for ferry-host:
// the size of the stripped binary (as `make build` and the image build it)
// for linux/amd64, arm64 and arm/v7, and the resident memory of the amd64
// binary in device mode serving one app (hello-wat), idle for 5 s after it
// reported the app serving, against a device-protocol server on loopback:
// with -benchtime Nx, the largest of N runs, each a fresh device. The RSS is
// split into its anonymous part (heap, stacks, compiled guest code) and its
// file-backed part (the binary's pages).
func BenchmarkDeviceFootprint(b *testing.B) {
	for _, a := range []struct{ goarch, goarm, metric string }{
		{"amd64", "", "size-MiB-amd64"}, {"arm64", "", "size-MiB-arm64"}, {"arm", "7", "size-MiB-armv7"},
	} {
		fi, err := os.Stat(buildHost(b, a.goarch, a.goarm))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), a.metric)
	}
	var rss idleRSS // the largest of b.N runs
	for i := range b.N {
		r := idleDeviceRSS(b)
		b.Logf("run %d: idle RSS %.1f MiB (anon %.1f, file %.1f)", i+1, r.total/(1<<20), r.anon/(1<<20), r.file/(1<<20))
		if r.total > rss.total {
			rss = r
		}
	}
	b.ReportMetric(rss.total/(1<<20), "idle-rss-MiB")
	b.ReportMetric(rss.anon/(1<<20), "idle-rss-anon-MiB")
	b.ReportMetric(rss.file/(1<<20), "idle-rss-file-MiB")
}

// idleRSS is a process's resident memory in bytes: the total (VmRSS) and
// its anonymous (heap, stacks, wazero's compiled code) and file-backed
// (the binary's pages, mapped files) parts.
type idleRSS struct{ total, anon, file float64 }

func idleDeviceRSS(b *testing.B) idleRSS {
	const token = "bench-enroll-token"
	srv := devicetest.New(b, token)
	reg, ref := publishHello(b, "hello")
	defer reg.Close()
	_, dgst, _ := strings.Cut(ref, "@")
	srv.SetDesired(api.DesiredApp{Name: "hello", Ref: ref, Digest: dgst})
	bin := buildHost(b, "amd64", "")
	p := startDeviceB(b, bin, "device", "--server", srv.URL(), "--enroll-token", token, "--data-dir", b.TempDir(),
		"--trust-key", trustKeyFile(b), "--listen", "127.0.0.1:0")
	srv.WaitReport(time.Minute, "hello serving", func(r api.StatusReport) bool {
		return len(r.Apps) == 1 && r.Apps[0].Phase == api.PhaseServing && r.Apps[0].Healthy
	})
	time.Sleep(5 * time.Second)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	var r idleRSS
	for _, l := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var dst *float64
		switch k {
		case "VmRSS":
			dst = &r.total
		case "RssAnon":
			dst = &r.anon
		case "RssFile":
			dst = &r.file
		default:
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
		if err != nil {
			b.Fatal(err)
		}
		*dst = kb * 1024
	}
	if r.total == 0 {
		b.Fatal("no VmRSS")
	}
	if dir := os.Getenv("FERRY_BENCH_PROC_DUMP"); dir != "" {
		// For profiling: keep the idle device's memory map and status.
		for _, f := range []string{"smaps", "smaps_rollup", "status"} {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.Process.Pid, f)); err == nil {
				os.WriteFile(filepath.Join(dir, "device-"+f), data, 0o644)
			}
		}
	}
	return r
}

// startDeviceB runs bin with args and waits for its serving line.
func startDeviceB(b *testing.B, bin string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(b.TempDir(), "docker"))
	testenv.StartProcess(b, cmd, deviceServingRE, time.Minute)
	return cmd
}
