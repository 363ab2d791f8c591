package main

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

// Property marshalling between the engine's wire format and plain Kubernetes
// objects (map[string]any as encoding/json produces them).

// unmarshalOpts keeps everything the engine sends: unknowns (preview),
// secrets (so they can be kept secret in the outputs) and resource references.
func unmarshalOpts(label string) plugin.MarshalOptions {
	return plugin.MarshalOptions{
		Label:         label,
		KeepUnknowns:  true,
		KeepSecrets:   true,
		KeepResources: true,
		SkipNulls:     true,
	}
}

// marshalOpts is the counterpart of unmarshalOpts for values sent back.
func marshalOpts(label string) plugin.MarshalOptions {
	return plugin.MarshalOptions{
		Label:         label,
		KeepUnknowns:  true,
		KeepSecrets:   true,
		KeepResources: true,
		SkipNulls:     true,
	}
}

func unmarshal(s *structpb.Struct, label string) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	m, err := plugin.UnmarshalProperties(s, unmarshalOpts(label))
	if err != nil {
		return nil, fmt.Errorf("%s: unmarshalling properties: %w", label, err)
	}
	return m, nil
}

func marshal(m resource.PropertyMap, label string) (*structpb.Struct, error) {
	s, err := plugin.MarshalProperties(m, marshalOpts(label))
	if err != nil {
		return nil, fmt.Errorf("%s: marshalling properties: %w", label, err)
	}
	return s, nil
}

// errUnknown is returned by toPlain when a value is not known yet.
type errUnknown struct{ path string }

func (e errUnknown) Error() string { return fmt.Sprintf("%s is not known yet", e.path) }

// toPlain converts a property map into a plain object, unwrapping secrets.
// Unknown values are an error: only known objects can be sent to the API
// server.
func toPlain(m resource.PropertyMap) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if isInternalKey(string(k)) {
			continue
		}
		pv, err := plainValue(v, string(k))
		if err != nil {
			return nil, err
		}
		if pv != nil {
			out[string(k)] = pv
		}
	}
	return out, nil
}

func plainValue(v resource.PropertyValue, path string) (any, error) {
	switch {
	case v.IsNull():
		return nil, nil
	case v.IsBool():
		return v.BoolValue(), nil
	case v.IsNumber():
		f := v.NumberValue()
		// Kubernetes integers (replicas, ports…) must not become 3.0.
		if f == float64(int64(f)) {
			return int64(f), nil
		}
		return f, nil
	case v.IsString():
		return v.StringValue(), nil
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]any, 0, len(arr))
		for i, e := range arr {
			pe, err := plainValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, pe)
		}
		return out, nil
	case v.IsObject():
		obj := v.ObjectValue()
		out := make(map[string]any, len(obj))
		for k, e := range obj {
			pe, err := plainValue(e, path+"."+string(k))
			if err != nil {
				return nil, err
			}
			if pe != nil {
				out[string(k)] = pe
			}
		}
		return out, nil
	case v.IsSecret():
		return plainValue(v.SecretValue().Element, path)
	case v.IsComputed():
		return nil, errUnknown{path}
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return nil, errUnknown{path}
		}
		return plainValue(o.Element, path)
	case v.IsResourceReference():
		ref := v.ResourceReferenceValue()
		if id, ok := ref.IDString(); ok && id != "" {
			return id, nil
		}
		return string(ref.URN), nil
	default:
		return nil, fmt.Errorf("%s: unsupported property value %v (assets and archives are not Kubernetes fields)", path, v.TypeString())
	}
}

// fromPlain converts a plain object (e.g. a live object) into properties.
func fromPlain(obj map[string]any) resource.PropertyMap {
	return resource.NewPropertyMapFromMap(obj)
}

func isInternalKey(k string) bool { return len(k) >= 2 && k[:2] == "__" }

// markSecret wraps v as a secret unless it already is one (or is null).
func markSecret(v resource.PropertyValue) resource.PropertyValue {
	if v.IsSecret() || v.IsNull() {
		return v
	}
	return resource.MakeSecret(v)
}

// unsecret strips secret wrappers (and known output wrappers) recursively, so
// that two values differing only in secretness compare equal.
func unsecret(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return unsecret(v.SecretValue().Element)
	case v.IsOutput() && v.OutputValue().Known:
		return unsecret(v.OutputValue().Element)
	case v.IsOutput():
		return resource.MakeComputed(resource.NewProperty(""))
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = unsecret(e)
		}
		return resource.NewProperty(out)
	case v.IsObject():
		obj := v.ObjectValue()
		out := make(resource.PropertyMap, len(obj))
		for k, e := range obj {
			if e.IsNull() {
				continue
			}
			out[k] = unsecret(e)
		}
		return resource.NewProperty(out)
	default:
		return v
	}
}

// sortedKeys returns the keys of m in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nestedString reads a string at path in a plain object ("" when absent).
func nestedString(obj map[string]any, path ...string) string {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

// nestedMap reads (and optionally creates) a map at path in a plain object.
func nestedMap(obj map[string]any, create bool, path ...string) map[string]any {
	cur := obj
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			if !create {
				return nil
			}
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	return cur
}
