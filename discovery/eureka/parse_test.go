package eureka

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hudl/fargo"

	"github.com/hxds/hxds/discovery"
)

// inst is one instance in the JSON Eureka writes (ports as {"$","@enabled"}).
func inst(fields string) string {
	base := `"instanceId":"i1","hostName":"h1","app":"A","ipAddr":"10.0.0.1","status":"UP",` +
		`"port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},` +
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}`
	if fields != "" {
		base += "," + fields
	}
	return "{" + base + "}"
}

func apps(app string) string {
	return `{"applications":{"versions__delta":"1","apps__hashcode":"UP_1_","application":[` + app + `]}}`
}

func TestParseListing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     string
		wantErr bool
		// want is "<app>:<id>:<status>:<addr>:<port>:<usable>" per decoded instance.
		want    []string
		skipped int
	}{
		{name: "normal", doc: apps(`{"name":"A","instance":[` + inst("") + `]}`), want: []string{"A:i1:UP:10.0.0.1:8080:true"}},
		{name: "single app object, single instance object", doc: `{"applications":{"application":{"name":"A","instance":` + inst("") + `}}}`, want: []string{"A:i1:UP:10.0.0.1:8080:true"}},
		{name: "port as string (Eureka ≤1.2.1)", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"$":8080`, `"$":"8080"`, 1) + `]}`), want: []string{"A:i1:UP:10.0.0.1:8080:true"}},
		{name: "empty registry", doc: `{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}`},
		{name: "no application key", doc: `{"applications":{}}`},
		{name: "app without instances", doc: apps(`{"name":"A"}`), want: nil},
		{name: "not JSON", doc: `<applications/>`, wantErr: true},
		{name: "no applications object", doc: `{}`, wantErr: true},
		{name: "applications null", doc: `{"applications":null}`, wantErr: true},
		{name: "applications wrong type", doc: `{"applications":[1,2]}`, wantErr: true},
		{name: "application wrong type", doc: `{"applications":{"application":"x"}}`, wantErr: true},
		{name: "application array of junk", doc: apps(`1,"x",null,[]`), skipped: 4},
		{name: "app without name", doc: apps(`{"instance":[` + inst("") + `]}`), skipped: 1},
		{name: "app name with a space", doc: apps(`{"name":"A B","instance":[` + inst("") + `]}`), skipped: 1},
		{name: "instance wrong type", doc: apps(`{"name":"A","instance":[1]}`), want: nil, skipped: 1},
		{name: "instance without ports", doc: apps(`{"name":"A","instance":[{"instanceId":"x","ipAddr":"10.0.0.1","dataCenterInfo":{"name":"MyOwn"}}]}`), skipped: 1},
		{name: "dataCenterInfo null (fargo panics)", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}`, `"dataCenterInfo":null`, 1) + `]}`), skipped: 1},
		{name: "dataCenterInfo empty (fargo panics)", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}`, `"dataCenterInfo":{"x":1}`, 1) + `]}`), skipped: 1},
		{name: "one bad instance among good ones", doc: apps(`{"name":"A","instance":[` + inst("") + `,{"port":"x"}]}`), want: []string{"A:i1:UP:10.0.0.1:8080:true"}, skipped: 1},
		{name: "port out of range", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `8080`, `99999`, 1) + `]}`), want: []string{"A:i1:UP:10.0.0.1:0:false"}},
		{name: "negative port", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `8080`, `-1`, 1) + `]}`), want: []string{"A:i1:UP:10.0.0.1:0:false"}},
		{name: "no port enabled", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"@enabled":"true"`, `"@enabled":"false"`, 1) + `]}`), want: []string{"A:i1:UP:10.0.0.1:0:false"}},
		{name: "secure port only", doc: apps(`{"name":"A","instance":[` + strings.NewReplacer(`"@enabled":"true"`, `"@enabled":"false"`, `{"$":443,"@enabled":"false"}`, `{"$":443,"@enabled":"true"}`).Replace(inst("")) + `]}`), want: []string{"A:i1:UP:10.0.0.1:443:true"}},
		{name: "no ipAddr: hostName", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"ipAddr":"10.0.0.1"`, `"ipAddr":""`, 1) + `]}`), want: []string{"A:i1:UP:h1:8080:true"}},
		{name: "address with junk", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `10.0.0.1`, `10.0.0.1/8 x`, 1) + `]}`), want: []string{"A:i1:UP:10.0.0.1/8 x:8080:false"}},
		{name: "no instanceId: hostName", doc: apps(`{"name":"A","instance":[` + strings.Replace(inst(""), `"instanceId":"i1"`, `"instanceId":""`, 1) + `]}`), want: []string{"A:h1:UP:10.0.0.1:8080:true"}},
		{name: "metadata not an object", doc: apps(`{"name":"A","instance":[` + inst(`"metadata":[1]`) + `]}`), skipped: 1},
		{name: "metadata with non-strings", doc: apps(`{"name":"A","instance":[` + inst(`"metadata":{"a":1,"b":{"c":"d"},"e":"f","@class":"x"}`) + `]}`), want: []string{"A:i1:UP:10.0.0.1:8080:true"}},
		{name: "deep nesting", doc: apps(`{"name":"A","instance":[` + inst(`"metadata":{"a":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`) + `]}`), want: []string{"A:i1:UP:10.0.0.1:8080:true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parseListing([]byte(tc.doc), false)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var got []string
			for _, a := range l.apps {
				for _, in := range a.instances {
					got = append(got, fmt.Sprintf("%s:%s:%s:%s:%d:%v", a.name, in.id, in.status, in.addr, in.port, in.usable))
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("instances %q, want %q", got, tc.want)
			}
			if l.skipped != tc.skipped {
				t.Errorf("skipped %d (%v), want %d", l.skipped, l.firstErr, tc.skipped)
			}
		})
	}
}

func TestMetadataAndWeight(t *testing.T) {
	l, err := parseListing([]byte(apps(`{"name":"A","instance":[`+inst(`"metadata":{"a":1,"e":"f","@class":"x","weight":"7","protocol":"grpc"}`)+`]}`)), false)
	if err != nil || len(l.apps) != 1 || len(l.apps[0].instances) != 1 {
		t.Fatalf("parse: %v %+v", err, l)
	}
	in := l.apps[0].instances[0]
	if len(in.meta) != 3 || in.meta["e"] != "f" || in.weight != 7 || in.protocol != "grpc" {
		t.Errorf("instance %+v", in)
	}
	for s, want := range map[string]uint32{"": 1, "0": 1, "-3": 1, "x": 1, "1.5": 1, " 4 ": 4, "99999999999": maxWeight, "100": 100} {
		if got := weightOf(s); got != want {
			t.Errorf("weightOf(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestDeltaApplyAndHashcode(t *testing.T) {
	full, err := parseListing([]byte(apps(`{"name":"A","instance":[`+inst("")+`,`+strings.Replace(inst(""), `"i1"`, `"i2"`, 1)+`]}`)), false)
	if err != nil {
		t.Fatal(err)
	}
	m := fullModel(full)
	if h := m.hashcode(); h != "UP_2_" {
		t.Errorf("hashcode %q", h)
	}
	delta := apps(`{"name":"A","instance":[` +
		strings.Replace(inst(`"actionType":"MODIFIED"`), `"UP"`, `"DOWN"`, 1) + `,` +
		strings.Replace(inst(`"actionType":"DELETED"`), `"i1"`, `"i2"`, 1) + `]},` +
		`{"name":"B","instance":[` + strings.Replace(inst(`"actionType":"ADDED"`), `"i1"`, `"b1"`, 1) + `]},` +
		`{"name":"C","instance":[` + strings.Replace(inst(`"actionType":"DELETED"`), `"i1"`, `"c1"`, 1) + `]}`)
	l, err := parseListing([]byte(delta), true)
	if err != nil {
		t.Fatal(err)
	}
	m.applyDelta(l)
	if h := m.hashcode(); h != "DOWN_1_UP_1_" {
		t.Errorf("hashcode after delta %q", h)
	}
	svcs, _ := m.services(func(_ string, p uint32) uint32 { return p }, nil)
	if len(svcs) != 2 || svcs[0].Host != "A.eureka" || len(svcs[0].Instances) != 0 || svcs[1].Host != "B.eureka" || len(svcs[1].Instances) != 1 {
		t.Errorf("services %+v", svcs)
	}
	// Deleting the last instance removes the app.
	l, _ = parseListing([]byte(apps(`{"name":"A","instance":[`+inst(`"actionType":"DELETED"`)+`]}`)), true)
	m.applyDelta(l)
	if _, ok := m["A"]; ok {
		t.Errorf("app with no instances left stays in the model")
	}
}

func TestServicesDeterministic(t *testing.T) {
	// Duplicate address:port under two ids is one endpoint; order does not
	// depend on map iteration.
	doc := apps(`{"name":"A","instance":[` + inst("") + `,` + strings.Replace(inst(`"metadata":{"k":"v"}`), `"i1"`, `"i0"`, 1) + `]}`)
	var first []discovery.Service
	for range 20 {
		l, err := parseListing([]byte(doc), false)
		if err != nil {
			t.Fatal(err)
		}
		svcs, _ := fullModel(l).services(func(_ string, p uint32) uint32 { return p }, nil)
		if len(svcs) != 1 || len(svcs[0].Instances) != 1 || svcs[0].Instances[0].Metadata["k"] != "v" {
			t.Fatalf("services %+v", svcs)
		}
		if first == nil {
			first = svcs
		}
	}
}

// fuzzSeeds are listings, and pieces of one, for the fuzzer to mutate.
func fuzzSeeds() []string {
	good, _ := json.Marshal(fargo.GetAppsResponseJson{Response: &fargo.GetAppsResponse{
		AppsHashcode: "UP_1_",
		Applications: []*fargo.Application{{Name: "A", Instances: []*fargo.Instance{{
			InstanceId: "i", IPAddr: "10.0.0.1", Status: fargo.UP, Port: 80, PortEnabled: true,
			DataCenterInfo: fargo.DataCenterInfo{Name: fargo.MyOwn},
		}}}},
	}})
	return []string{
		string(good),
		apps(`{"name":"A","instance":[` + inst(`"metadata":{"protocol":"grpc","weight":"3"}`) + `]}`),
		apps(`{"name":"A","instance":` + inst(`"actionType":"DELETED"`) + `}`),
		`{"applications":{"application":{"name":"A","instance":{"dataCenterInfo":null}}}}`,
		`{"applications":{"application":[{"name":"A","instance":[{"port":{"$":"x"}}]}]}}`,
		`{"applications":null}`, `{}`, `[]`, `null`, ``,
	}
}

func FuzzParseListing(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, delta bool) {
		l, err := parseListing(doc, delta)
		if err != nil {
			return
		}
		m := fullModel(l)
		_ = m.hashcode()
		m.clone().applyDelta(l)
		svcs, _ := m.services(func(_ string, p uint32) uint32 { return p }, nil)
		for _, s := range svcs {
			for _, in := range s.Instances {
				if in.Weight < 1 || in.Port == 0 || in.Address == "" {
					t.Fatalf("bad instance published: %+v", in)
				}
			}
		}
	})
}
