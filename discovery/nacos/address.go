package nacos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// serverAddr is one Nacos server (HTTP port; gRPC is port + 1000).
type serverAddr struct {
	host string
	port uint32
}

func (a serverAddr) String() string {
	return net.JoinHostPort(a.host, strconv.Itoa(int(a.port)))
}

// addressServerURL is the server-list URL of an address server (§4.1):
// <addr>/nacos/serverlist?namespace=<ns>; a bare host[:port] means http.
func addressServerURL(addr, namespaceID string) (string, error) {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("nacosAddressServer %q: %w", addr, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("nacosAddressServer %q: want http(s)://host[:port]", addr)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/nacos/serverlist"
	u.RawQuery = url.Values{"namespace": {namespaceID}}.Encode()
	return u.String(), nil
}

// fetchServerList asks an address server for the Nacos servers.
func fetchServerList(ctx context.Context, client *http.Client, u string, defPort uint32) ([]serverAddr, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Request-Module", "Naming")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("address server: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("address server: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("address server: HTTP %d", resp.StatusCode)
	}
	list := parseServerList(b, defPort)
	if len(list) == 0 {
		return nil, fmt.Errorf("address server returned no usable server in %q", truncate(string(b), 200))
	}
	return list, nil
}

// parseServerList reads an address server's body: one "ip" or "ip:port"
// per line. Unusable lines are skipped.
func parseServerList(b []byte, defPort uint32) []serverAddr {
	var out []serverAddr
	seen := map[serverAddr]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		host, port := line, defPort
		if h, p, err := net.SplitHostPort(line); err == nil {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				continue
			}
			host, port = h, uint32(n)
		}
		if port == 0 || port > 65535-grpcPortOffset || !validAddress(host) {
			continue
		}
		a := serverAddr{host, port}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// pick chooses a server at random, avoiding cur when there is a choice
// (cur is the one that just failed).
func pick(list []serverAddr, cur serverAddr) serverAddr {
	var others []serverAddr
	for _, a := range list {
		if a != cur {
			others = append(others, a)
		}
	}
	if len(others) == 0 {
		return cur
	}
	return others[rand.IntN(len(others))]
}

func contains(list []serverAddr, a serverAddr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
