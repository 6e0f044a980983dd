package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/admin"
)

// newClientCmd is `localdisk status` or `localdisk volumes` (name), a
// client of the operator API's method on a running plugin's socket.
func newClientCmd(name, method, short string) *cobra.Command {
	var endpoint, output string
	cmd := &cobra.Command{
		Use:                   name + " [--endpoint unix:///ABS/PATH] [-o table|json]",
		Short:                 short,
		Long:                  short + " (localdisk.v1.Admin/" + method + " on its socket: run it as a user who can open the socket).",
		Args:                  noArgs,
		DisableFlagsInUseLine: true, // Use names them
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&endpoint, "endpoint", os.Getenv("CSI_ENDPOINT"), "the plugin's endpoint, unix:///ABS/PATH (default $CSI_ENDPOINT)")
	fs.StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return fmt.Errorf("--output %q: want table or json", output)
		}
		path, err := driver.SocketPath(endpoint)
		if err != nil {
			return err
		}
		return callAdmin(path, method, output, cmd.OutOrStdout())
	}
	return cmd
}

// callAdmin calls method of the operator API on the socket at path and
// prints its answer as output says.
func callAdmin(path, method, output string, stdout io.Writer) error {
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return failed(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out structpb.Struct
	if err := conn.Invoke(ctx, "/"+admin.ServiceName+"/"+method, &emptypb.Empty{}, &out); err != nil {
		return failed(err)
	}
	blob, err := json.Marshal(out.AsMap()["items"])
	if err != nil {
		return failed(err)
	}
	if method == "Status" {
		var st admin.Status
		err = render(blob, &st, output, stdout, func(w io.Writer) { statusTable(w, st) })
	} else {
		var vols []admin.VolumeInfo
		err = render(blob, &vols, output, stdout, func(w io.Writer) { volumesTable(w, vols) })
	}
	if err != nil {
		return failed(err)
	}
	return nil
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
	fmt.Fprintln(w, "POOL\tKIND\tROOT\tCAPACITY\tALLOCATED\tFREE\tHEALTH\tVOLUMES\tQUOTA\tSNAPSHOTS")
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
		case p.Overused: // accounted, not enforced: its volumes wrote past their sizes
			health = "OVERUSED"
		}
		snaps := cmp.Or(p.Snapshots, "none")
		if p.SnapshotCount > 0 {
			snaps = fmt.Sprintf("%s (%d)", snaps, p.SnapshotCount)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Name, p.Kind, root, size(p.Capacity),
			size(p.Allocated), size(p.Free), health, p.Volumes, onOff(p.QuotaEnforced), snaps)
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
