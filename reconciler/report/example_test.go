package report_test

import (
	"fmt"

	"certops/plan"
	"certops/reconciler/report"
)

func ExampleMarkdown() {
	plan := plan.Diff(
		[]plan.EntityInfo{{Name: "shop", Type: "server", File: "shop.yaml", SNIs: []string{"shop.example.com"}}},
		[]plan.EntityInfo{{Name: "shop", Type: "server", File: "shop.yaml", SNIs: []string{"shop.example.com", "www.shop.example.com"}}},
	)
	fmt.Print(report.Markdown(plan, report.MarkdownOptions{Base: "origin/main", Head: "working tree"}))
	// Output:
	// ### certops plan: `origin/main` → `working tree`
	//
	// **Summary:** 0 to create, 1 to update, 0 to delete, 0 unchanged.
	//
	// | | Entity | File | Changed fields |
	// |---|---|---|---|
	// | `~` update | `shop` | `shop.yaml` | snis |
	//
	// <details><summary><code>~ update shop</code> (shop.yaml)</summary>
	//
	// | Field | Old | New |
	// |---|---|---|
	// | snis |  | + www.shop.example.com |
	//
	// </details>
	//
}
