package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestInstallKubernetesPrints: the manifests print as YAML documents that
// parse, name the image and repository given, and usage mistakes exit 2.
func TestInstallKubernetesPrints(t *testing.T) {
	var out, errb bytes.Buffer
	img := "registry.example/ferry@sha256:" + strings.Repeat("b", 64)
	if code := run(context.Background(), []string{"install", "kubernetes", "--image", img, "--repo", "https://git.example/a.git",
		"--target-namespace", "apps", "--target-namespace", "web"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	docs := strings.Split(out.String(), "\n---\n")
	kinds := map[string]int{}
	for _, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, d)
		}
		kinds[m["kind"].(string)]++
	}
	if kinds["Deployment"] != 1 || kinds["RoleBinding"] != 3 || kinds["ClusterRole"] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
	if !strings.Contains(out.String(), img) || !strings.Contains(out.String(), "https://git.example/a.git") {
		t.Fatal("the manifest does not carry the image and repository given")
	}
	for _, args := range [][]string{
		{"install", "kubernetes", "--repo", "x"},
		{"install", "kubernetes", "--repo", "x", "--image", "y", "--replicas", "0"},
		{"install", "kubernetes", "--repo", "x", "--image", "y", "--target-namespace", "Bad_NS"},
	} {
		errb.Reset()
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
