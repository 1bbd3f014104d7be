package readme

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBlocksAndCommands(t *testing.T) {
	md := "intro\n\n```sh\nmake build   # bin/ferry\n\n# a note\nexport A='x # y' B=\"#\"\nbin/ferry plan -detailed-exitcode .   # exit 2: changes present\n```\ntext\n```\nplain\n```\n"
	blocks := Blocks(md)
	if len(blocks) != 2 {
		t.Fatalf("got %d blocks, want 2: %+v", len(blocks), blocks)
	}
	if blocks[0].Lang != "sh" || blocks[0].Line != 4 || blocks[1].Lang != "" || blocks[1].FirstLine() != "plain" {
		t.Errorf("blocks: %+v", blocks)
	}
	if got := blocks[0].FirstLine(); got != "make build # bin/ferry" {
		t.Errorf("FirstLine = %q", got)
	}
	got := Commands(blocks[0])
	want := []Command{
		{Line: 4, Text: "make build   # bin/ferry", Cmd: "make build", Comment: "bin/ferry"},
		{Line: 7, Text: `export A='x # y' B="#"`, Cmd: `export A='x # y' B="#"`},
		{Line: 8, Text: "bin/ferry plan -detailed-exitcode .   # exit 2: changes present", Cmd: "bin/ferry plan -detailed-exitcode .", Comment: "exit 2: changes present"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Commands (-want +got):\n%s", d)
	}
	for i, c := range got {
		if code, wantCode := c.ExitCode(), []int{0, 0, 2}[i]; code != wantCode {
			t.Errorf("%q: ExitCode = %d, want %d", c.Text, code, wantCode)
		}
	}
}
