package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/admin"
)

// clientCmd runs `localdisk status` or `localdisk volumes` against a
// running plugin's socket.
func clientCmd(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("localdisk "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", os.Getenv("CSI_ENDPOINT"), "the plugin's endpoint, unix:///ABS/PATH (default $CSI_ENDPOINT)")
	output := fs.String("output", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "localdisk %s: --output %q: want table or json\n", cmd, *output)
		return 2
	}
	path, err := driver.SocketPath(*endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "localdisk %s: %v\n", cmd, err)
		return 2
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "localdisk %s: %v\n", cmd, err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	method := map[string]string{"status": "Status", "volumes": "Volumes"}[cmd]
	var out structpb.Struct
	if err := conn.Invoke(ctx, "/"+admin.ServiceName+"/"+method, &emptypb.Empty{}, &out); err != nil {
		fmt.Fprintf(stderr, "localdisk %s: %v\n", cmd, err)
		return 1
	}
	blob, err := json.Marshal(out.AsMap()["items"])
	if err != nil {
		fmt.Fprintf(stderr, "localdisk %s: %v\n", cmd, err)
		return 1
	}
	if cmd == "status" {
		var st admin.Status
		err = render(blob, &st, *output, stdout, func(w io.Writer) { statusTable(w, st) })
	} else {
		var vols []admin.VolumeInfo
		err = render(blob, &vols, *output, stdout, func(w io.Writer) { volumesTable(w, vols) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "localdisk %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// render decodes blob into v and prints it as indented JSON or a table.
func render(blob []byte, v any, output string, w io.Writer, table func(io.Writer)) error {
	if err := json.Unmarshal(blob, v); err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func statusTable(w io.Writer, st admin.Status) {
	fmt.Fprintf(w, "driver %s %s on node %s\n", st.Driver, st.Version, st.NodeID)
	fmt.Fprintln(w, "POOL\tKIND\tROOT\tCAPACITY\tALLOCATED\tFREE\tHEALTH\tVOLUMES\tQUOTA")
	for _, p := range st.Pools {
		root := p.Root
		if root == "" {
			root = strings.Join(p.Disks, ",")
		}
		health := "healthy"
		switch {
		case p.Absent:
			health = "absent"
		case !p.Healthy:
			health = "UNHEALTHY"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Kind, root, size(p.Capacity),
			size(p.Allocated), size(p.Free), health, p.Volumes, onOff(p.QuotaEnforced))
	}
}

func volumesTable(w io.Writer, vols []admin.VolumeInfo) {
	fmt.Fprintln(w, "ID\tNAME\tPOOL\tSIZE\tPHASE\tMOUNTS")
	for _, v := range vols {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Pool, size(v.Capacity), v.Phase, strings.Join(v.Mounts, ","))
	}
}

func size(n int64) string {
	const mib = 1 << 20
	if n%(1<<30) == 0 && n > 0 {
		return fmt.Sprintf("%dGi", n>>30)
	}
	return fmt.Sprintf("%dMi", n/mib)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
