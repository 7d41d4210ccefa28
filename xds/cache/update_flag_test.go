package cache

// Every test binary accepts -update (see internal/testutil).
import _ "github.com/hxds/hxds/internal/testutil"
