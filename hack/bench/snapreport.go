package main

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"
)

// snapRow is one filesystem and data size.
type snapRow struct {
	fs, method   string
	bytes        int64
	files        int
	write        time.Duration // filling the source through its publish (O_DIRECT, 4 writers, then syncfs)
	read         time.Duration // a plain read of the source's files (cold)
	cpFull       time.Duration // cp -a --reflink=never + syncfs (cold)
	cpReflink    time.Duration // cp -a --reflink=always + syncfs (cold); 0: not measured
	btrfsSnap    time.Duration // btrfs subvolume snapshot -r of the source (cold); 0: not measured
	snapshot     time.Duration // CreateSnapshot until ready_to_use (cold)
	snapCalls    int           // CreateSnapshot + GetSnapshot calls (polled every 10 ms)
	snapSpace    int64         // free space the snapshot took (statfs, after syncfs)
	restore      time.Duration // CreateVolume from the snapshot until it succeeds (cold)
	restoreCalls int           // CreateVolume calls (replayed after DEADLINE_EXCEEDED)
	delSnapshot  time.Duration
	delRestored  time.Duration
	sampled      int // files of the restored volume whose content was compared
	ok           bool
}

// reference is the physical reference of the row's method: what the
// filesystem itself does for the same job: a btrfs snapshot with the btrfs
// tool, cp -a with reflinks where the method shares data, and for a full
// copy the disk's floor, reading the data once and writing it once.
func (r snapRow) reference() (string, time.Duration) {
	switch {
	case r.method == "btrfs" && r.btrfsSnap > 0:
		return "btrfs subvolume snapshot -r", r.btrfsSnap
	case r.method == "reflink" && r.cpReflink > 0:
		return "cp -a --reflink", r.cpReflink
	}
	return "read + write", r.read + r.write
}

type snapReport struct {
	o          *options
	loadBefore string
	started    time.Time
	version    string
	directIO   bool
	rows       []snapRow
	failed     string
}

func freeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bfree) * st.Bsize, nil
}

func secs(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func rateOf(b int64, d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.0f MB/s)", float64(b)/1e6/d.Seconds())
}

func ratioOf(d, ref time.Duration) string {
	if ref <= 0 || d <= 0 {
		return ""
	}
	if r := float64(d) / float64(ref); r < 0.1 {
		return fmt.Sprintf("%.4f×", r)
	}
	return fmt.Sprintf("%.2f×", float64(d)/float64(ref))
}

func spaceOf(b int64) string {
	if b < 10<<20 {
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func (r *snapReport) print(w io.Writer) {
	if len(r.rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Snapshots and restores — %s\n\n", r.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s\n- load average before / after: %s / %s\n- %s, --log-level %s; run time %v\n",
		machine(), r.loadBefore, loadAvg(), r.version, r.o.logLevel, time.Since(r.started).Round(time.Second))
	fmt.Fprintf(w, "- each filesystem on its own sparse image on %s, loop device direct I/O %v; one PATH pool, its own plugin\n",
		diskOf(r.o.dir), r.directIO)
	fmt.Fprintf(w, "- the source is filled through its publish with O_DIRECT (4 writers, then syncfs); the page cache is dropped "+
		"(sync; drop_caches=3) before every timed step; CreateVolume calls have a %v deadline and are replayed after DEADLINE_EXCEEDED\n",
		r.o.snapTimeout)
	if r.failed != "" {
		fmt.Fprintf(w, "- **FAILED**: %s (rows without ✓ are partial)\n", r.failed)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| fs | method | data | files | snapshot (ready) | restore | snapshot space | reference | snapshot ÷ ref | restore ÷ ref | ÷ cp -a (snapshot / restore) | DeleteSnapshot / DeleteVolume | calls (snapshot / restore) | restored data |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		name, ref := x.reference()
		check := "—"
		if x.ok {
			check = fmt.Sprintf("✓ %d files, %s; %d sha256", x.files, gib(x.bytes), x.sampled)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s: %s | %s | %s | %s / %s | %s / %s | %d / %d | %s |\n",
			x.fs, x.method, gib(x.bytes), x.files, secs(x.snapshot), secs(x.restore), spaceOf(x.snapSpace),
			name, secs(ref), ratioOf(x.snapshot, ref), ratioOf(x.restore, ref),
			ratioOf(x.snapshot, x.cpFull), ratioOf(x.restore, x.cpFull),
			secs(x.delSnapshot), secs(x.delRestored), x.snapCalls, x.restoreCalls, check)
	}
	fmt.Fprintln(w, "\nWhat the disk does with the same data (cold cache each):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| fs | data | write (O_DIRECT) | read | cp -a | cp -a --reflink | btrfs subvolume snapshot -r |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s%s | %s%s | %s%s | %s | %s |\n", x.fs, gib(x.bytes),
			secs(x.write), rateOf(x.bytes, x.write), secs(x.read), rateOf(x.bytes, x.read),
			secs(x.cpFull), rateOf(x.bytes, x.cpFull), secs(x.cpReflink), secs(x.btrfsSnap))
	}
}
