package sage

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Regions are the values Sage's authorization page accepts in its country
// parameter. The country routes the user to Sage's UK or North American
// authorization server and must match the business's region.
var Regions = []string{"ca", "de", "es", "fr", "gb", "ie", "us"}

// NormaliseRegion lower-cases a region or callback country ("GB" → "gb") and
// accepts "uk" for "gb". An empty region stays empty (Sage then asks the user).
func NormaliseRegion(region string) (string, error) {
	r := strings.ToLower(strings.TrimSpace(region))
	if r == "uk" {
		r = "gb"
	}
	if r == "" {
		return "", nil
	}
	for _, ok := range Regions {
		if r == ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("sage: region %q: want one of %s", region, strings.Join(Regions, ", "))
}

// AuthCodeURLRegion is AuthCodeURL with Sage's country parameter set to region,
// so the user lands on the authorization server of the business's region.
// Extra options (PKCE, locale) are passed through. An empty or unknown region
// gives the plain AuthCodeURL (Sage's filter=apiv3.1 page asks for the country).
func (o OAuth) AuthCodeURLRegion(state, region string, opts ...oauth2.AuthCodeOption) string {
	if r, err := NormaliseRegion(region); err == nil && r != "" {
		opts = append(opts, oauth2.SetAuthURLParam("country", r))
	}
	return o.config().AuthCodeURL(state, opts...)
}

// RegionalAPI maps a region to its API base URL. Sage documents one base URL for
// every region (api.accounting.sage.com/v3.1), so an empty map is the normal
// case; entries exist for deployments that must pin a region to another host.
type RegionalAPI map[string]string

// For returns the API base URL of region, or def when none is configured.
func (m RegionalAPI) For(region, def string) string {
	if r, err := NormaliseRegion(region); err == nil && r != "" {
		if u, ok := m[r]; ok && u != "" {
			return u
		}
	}
	return def
}

// ParseRegionalAPI reads "gb=https://…,us=https://…" (the writer's
// SAGE_REGION_API_URLS).
func ParseRegionalAPI(s string) (RegionalAPI, error) {
	out := RegionalAPI{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		r, err := NormaliseRegion(k)
		v = strings.TrimRight(strings.TrimSpace(v), "/")
		if !ok || err != nil || r == "" || !apiBaseURL(v) {
			return nil, fmt.Errorf("sage: %q: want region=https://host/v3.1 with a region among %s", part, strings.Join(Regions, ", "))
		}
		out[r] = v
	}
	return out, nil
}

// apiBaseURL reports whether s is an API base such as https://host/v3.1: an
// absolute http(s) URL with a host and a path, without credentials, query or
// fragment. Request paths are appended to it as text, so without a path of
// its own a paging link could change the host the bearer token goes to.
func apiBaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Path != "" && u.Path != "/" && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && u.Opaque == ""
}
