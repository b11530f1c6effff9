// Command healthcheck probes a platform service, for container health
// checks in images that have no shell, curl or wget. It is built into every
// image of the Dockerfile at /usr/local/bin/healthcheck.
//
//	healthcheck [-timeout 3s] [-service NAME] URL
//
// A URL without a path (http://127.0.0.1:8081) gets the standard gRPC
// health check, grpc.health.v1.Health/Check, over the Connect protocol: the
// service is healthy when it answers SERVING (for NAME, or for the server
// as a whole when -service is empty). A URL with a path
// (http://127.0.0.1:8790/healthz) gets a GET: healthy on any 2xx answer.
//
// Exit status: 0 healthy, 1 unhealthy or unreachable, 2 bad usage. One line
// on stderr says why it is not healthy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"connectrpc.com/grpchealth"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	service := fs.String("service", "", "service name for the gRPC health check (empty: the whole server)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] [-service NAME] URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "healthcheck: %q is not an http(s) URL\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}} // never through a proxy
	if u.Path == "" || u.Path == "/" {
		err = checkGRPC(ctx, client, u, *service)
	} else {
		err = checkGET(ctx, client, u)
	}
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %s: %v\n", u.Redacted(), err)
		return 1
	}
	return 0
}

// checkGRPC asks grpc.health.v1.Health/Check over Connect.
func checkGRPC(ctx context.Context, client *http.Client, u *url.URL, service string) error {
	base := u.Scheme + "://" + u.Host
	res, err := grpchealth.NewClient(client, base).Check(ctx, &grpchealth.CheckRequest{Service: service})
	if err != nil {
		return err
	}
	if res.Status != grpchealth.StatusServing {
		return fmt.Errorf("status %s", res.Status)
	}
	return nil
}

// checkGET wants a 2xx answer to a GET.
func checkGET(ctx context.Context, client *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return errors.New(res.Status)
	}
	return nil
}
