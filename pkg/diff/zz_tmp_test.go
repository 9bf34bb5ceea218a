package diff
import ("testing";"fmt")
func TestZZShow(t *testing.T) {
	for _, c := range b2Cases() {
		r := Exact().Values(c.control, c.candidate)
		fmt.Println(c.name, len(c.control), len(c.candidate), r.Verdict, len(r.Diffs), r.Signature)
		for _, d := range r.Diffs { fmt.Printf("   %+v\n", d) }
		fmt.Println("  ", r.Patterns)
	}
	fmt.Println(string(b2Cases()[0].control))
}
