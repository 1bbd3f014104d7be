package device

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-wasm/ferry/targets/fleet/api"
)

// Arch is the device's architecture as api.DeviceInfo.Arch spells it:
// GOARCH, with the ARM version for 32-bit ARM ("arm/v7", from the GOARM
// the binary was built with).
func Arch() string {
	if runtime.GOARCH != "arm" {
		return runtime.GOARCH
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				v, _, _ := strings.Cut(s.Value, ",") // "7,softfloat"
				return "arm/v" + v
			}
		}
	}
	return "arm"
}

// Info describes the device now: version, arch, OS, uptime (the
// machine's, from /proc/uptime, else the process's since start), free
// memory (MemAvailable of /proc/meminfo) and free disk (statfs of dataDir,
// the blocks available to an unprivileged user). A figure it cannot read
// is zero.
func Info(version, dataDir string, start time.Time) api.DeviceInfo {
	in := api.DeviceInfo{Version: version, Arch: Arch(), OS: runtime.GOOS}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		in.UptimeSeconds = ParseUptime(string(b))
	}
	if in.UptimeSeconds == 0 {
		in.UptimeSeconds = time.Since(start).Seconds()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		in.FreeMemory = ParseMeminfo(f)
		_ = f.Close()
	}
	in.FreeDisk = freeDisk(dataDir)
	return in
}

// ParseUptime returns the first figure of /proc/uptime, in seconds (0 when
// it does not parse).
func ParseUptime(s string) float64 {
	f, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// ParseMeminfo returns MemAvailable of a /proc/meminfo, in bytes; on a
// kernel too old to have it, MemFree + Buffers + Cached. 0 when neither is
// there.
func ParseMeminfo(r interface{ Read([]byte) (int, error) }) uint64 {
	vals := map[string]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		vals[k] = n
	}
	if v, ok := vals["MemAvailable"]; ok {
		return v
	}
	return vals["MemFree"] + vals["Buffers"] + vals["Cached"]
}
