package wasmfetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// fetchHTTP GETs url with retries and returns the (unpacked) body.
func (c *Cache) fetchHTTP(ctx context.Context, url, host string) ([]byte, error) {
	client := c.clientFor(host)
	backoff := c.opts.HTTPInitialBackoff
	for attempt := 0; ; attempt++ {
		body, retry, err := c.httpAttempt(ctx, client, url)
		if err == nil {
			return unpack(body, c.opts.MaxModuleSize)
		}
		if !retry || attempt >= c.opts.HTTPMaxRetries || ctx.Err() != nil {
			if attempt > 0 {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt+1, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// httpAttempt performs one GET. retry reports whether the failure is retryable.
func (c *Cache) httpAttempt(ctx context.Context, client *http.Client, url string) (body []byte, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.HTTPRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: HTTP status %d", url, resp.StatusCode)
		switch {
		case resp.StatusCode == http.StatusNotImplemented,
			resp.StatusCode == http.StatusHTTPVersionNotSupported,
			resp.StatusCode == http.StatusNetworkAuthenticationRequired:
			return nil, false, err
		case resp.StatusCode >= 500:
			return nil, true, err
		default:
			return nil, false, err
		}
	}
	if resp.ContentLength > c.opts.MaxModuleSize {
		return nil, false, fmt.Errorf("GET %s: %w of %d bytes (Content-Length %d)", url, errTooLarge, c.opts.MaxModuleSize, resp.ContentLength)
	}
	b, err := readCapped(resp.Body, c.opts.MaxModuleSize)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, false, fmt.Errorf("GET %s: %w", url, err)
		}
		return nil, true, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return b, false, nil
}
