package readme

import (
	"strconv"
	"strings"
)

// Block is one fenced code block of a Markdown document.
type Block struct {
	// Lang is the info string after the opening fence ("sh"); empty when
	// the fence has none.
	Lang string
	// Line is the 1-based line number of the block's first content line.
	Line int
	// Lines are the block's content lines, without the fences.
	Lines []string
}

// FirstLine returns the block's first non-blank line with its runs of
// spaces collapsed to one, which is how the README test names a block.
// It returns "" for a block with no text.
func (b Block) FirstLine() string {
	for _, l := range b.Lines {
		if f := strings.Fields(l); len(f) > 0 {
			return strings.Join(f, " ")
		}
	}
	return ""
}

// Blocks returns the fenced (```) code blocks of a Markdown document in
// order. An unterminated block runs to the end of the document.
func Blocks(markdown string) []Block {
	var blocks []Block
	var cur *Block
	for i, l := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(l)
		if cur == nil {
			if lang, ok := strings.CutPrefix(trimmed, "```"); ok {
				cur = &Block{Lang: strings.TrimSpace(lang), Line: i + 2}
			}
			continue
		}
		if trimmed == "```" {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur.Lines = append(cur.Lines, l)
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

// Command is one command line of a shell block.
type Command struct {
	// Line is the 1-based line number in the document.
	Line int
	// Text is the whole line, trimmed.
	Text string
	// Cmd is the command without its trailing comment, trimmed.
	Cmd string
	// Comment is the trailing comment without "#", trimmed; "" when none.
	Comment string
}

// ExitCode returns the exit code the line's comment states ("exit 2: changes
// present" states 2), or 0 when the comment states none.
func (c Command) ExitCode() int {
	rest, ok := strings.CutPrefix(c.Comment, "exit ")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, ":")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil {
		return 0
	}
	return n
}

// Commands returns the command lines of b: every line that is neither
// blank nor only a comment. A comment starts at a "#" that follows white
// space outside single or double quotes.
func Commands(b Block) []Command {
	var cmds []Command
	for i, l := range b.Lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		cmd, comment := splitComment(t)
		cmds = append(cmds, Command{Line: b.Line + i, Text: t, Cmd: cmd, Comment: comment})
	}
	return cmds
}

// splitComment splits a shell line at its trailing comment.
func splitComment(line string) (cmd, comment string) {
	var quote rune
	prevSpace := false
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && prevSpace:
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		prevSpace = r == ' ' || r == '\t'
	}
	return strings.TrimSpace(line), ""
}
