package node

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// kubelet sets up iptables chains of its own on start (KUBE-FIREWALL with
// rules in INPUT and OUTPUT, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), for
// IPv4 and IPv6. keepIptables records the KUBE- chains that exist before
// the test and, when it ends (register it before kubelet starts), deletes
// the ones kubelet added and the rules that jump to them.
func keepIptables(t *testing.T) {
	t.Helper()
	before := map[string]bool{}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(ipt + "-save"); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle"} {
			for _, c := range kubeChains(ipt, table) {
				before[ipt+"/"+table+"/"+c] = true
			}
		}
	}
	t.Cleanup(func() {
		for _, ipt := range []string{"iptables", "ip6tables"} {
			if _, err := exec.LookPath(ipt + "-save"); err != nil {
				continue
			}
			for _, table := range []string{"filter", "nat", "mangle"} {
				removeKubeChains(t, ipt, table, before)
			}
		}
	})
}

var kubeChain = regexp.MustCompile(`(?m)^:(KUBE-[A-Z0-9-]+) `)

// kubeChains lists the KUBE- chains of a table.
func kubeChains(ipt, table string) []string {
	out, err := exec.Command(ipt+"-save", "-t", table).Output()
	if err != nil {
		return nil
	}
	var chains []string
	for _, m := range kubeChain.FindAllStringSubmatch(string(out), -1) {
		chains = append(chains, m[1])
	}
	return chains
}

// removeKubeChains deletes the KUBE- chains of a table that were not in
// before, after the rules that jump to them.
func removeKubeChains(t *testing.T, ipt, table string, before map[string]bool) {
	added := map[string]bool{}
	for _, c := range kubeChains(ipt, table) {
		if !before[ipt+"/"+table+"/"+c] {
			added[c] = true
		}
	}
	if len(added) == 0 {
		return
	}
	out, err := exec.Command(ipt+"-save", "-t", table).Output()
	if err != nil {
		t.Errorf("%s-save -t %s: %v", ipt, table, err)
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "-A" {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-j" && added[f[i+1]] && !added[f[1]] {
				// The rule as iptables-save prints it, with -D for -A; its
				// comment's quotes are shell quoting, which we drop.
				args := append([]string{"-t", table, "-D"}, unquote(f[1:])...)
				if o, err := exec.Command(ipt, args...).CombinedOutput(); err != nil {
					t.Errorf("%s %v: %v: %s", ipt, args, err, o)
				}
				break
			}
		}
	}
	for c := range added {
		for _, op := range []string{"-F", "-X"} {
			if o, err := exec.Command(ipt, "-t", table, op, c).CombinedOutput(); err != nil {
				t.Errorf("%s -t %s %s %s: %v: %s", ipt, table, op, c, err, o)
			}
		}
	}
}

// unquote joins the double-quoted words of an iptables-save rule.
func unquote(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, `"`) {
			s := w
			for !strings.HasSuffix(s, `"`) || s == `"` {
				i++
				if i >= len(words) {
					break
				}
				s += " " + words[i]
			}
			w = strings.Trim(s, `"`)
		}
		out = append(out, w)
	}
	return out
}
