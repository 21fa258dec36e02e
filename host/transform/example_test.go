package transform_test

import (
	"fmt"

	"github.com/connectd/connectd/host/transform"
	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// A pipeline's transform blocks compile once with Decode; each batch then
// goes through every step's Apply in order.
func ExampleDecode() {
	src := `
transform "filter" {
  where = "value.status == 'paid'"
}
transform "set" {
  fields  = { "total" = "value.price * value.qty" }
  headers = { "topic" = "'orders-' + value.country.lowerAscii()" }
}
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "orders.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		fmt.Println(diags)
		return
	}
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "transform", LabelNames: []string{"name"}}}})
	var steps []transform.Step
	for _, b := range content.Blocks {
		step, diags := transform.Decode(b.Labels[0], b.Body, nil)
		if diags.HasErrors() {
			fmt.Println(diags)
			return
		}
		steps = append(steps, step)
	}

	recs := []sdk.Record{
		{Value: []byte(`{"status":"paid","price":3,"qty":4,"country":"DE"}`), Position: sdk.Position{Partition: "orders/0", Offset: 7}},
		{Value: []byte(`{"status":"open","price":1,"qty":1,"country":"FR"}`), Position: sdk.Position{Partition: "orders/0", Offset: 8}},
		{Value: []byte(`{"status":"paid","price":"3","qty":4,"country":"FR"}`), Position: sdk.Position{Partition: "orders/0", Offset: 9}},
	}
	for _, s := range steps {
		in := recs
		var rejected []sdk.Rejection
		recs, rejected = s.Apply(in)
		for _, r := range rejected { // on_record_error decides: fail, skip or dead_letter
			fmt.Printf("%s rejected %s: %s\n", s.Name(), in[r.Index].Position, r.Reason)
		}
	}
	for _, r := range recs {
		fmt.Printf("%s %s topic=%s\n", r.Position, r.Value, r.Header("topic"))
	}
	// Output:
	// set rejected orders/0@9: fields "total": no such overload
	// orders/0@7 {"status":"paid","price":3,"qty":4,"country":"DE","total":12} topic=orders-de
}
