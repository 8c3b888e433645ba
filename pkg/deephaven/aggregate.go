package deephaven

import (
	"context"
	"fmt"
	"strings"

	pb "github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/pkg/deephaven/internal/backplane"
)

// Agg is one aggregation of [Table.AggBy]. Make it with the Agg* functions.
// Column arguments are match pairs: "Out=In", or "Col" for the same name.
type Agg struct {
	desc string
	pb   *pb.Aggregation
}

func columnsAgg(name string, spec *pb.AggSpec, cols []string) Agg {
	return Agg{
		desc: name + "(" + strings.Join(cols, ", ") + ")",
		pb: &pb.Aggregation{Type: &pb.Aggregation_Columns{Columns: &pb.Aggregation_AggregationColumns{
			Spec: spec, MatchPairs: cols,
		}}},
	}
}

// AggFirst keeps each group's first value, by row position.
func AggFirst(cols ...string) Agg {
	return columnsAgg("first", &pb.AggSpec{Type: &pb.AggSpec_First{First: &pb.AggSpec_AggSpecFirst{}}}, cols)
}

// AggLast keeps each group's last value, by row position. Key-backed input
// tables keep a replaced row at its old position, so "last" is not "newest";
// use AggMax or AggSortedLast on a time column for that.
func AggLast(cols ...string) Agg {
	return columnsAgg("last", &pb.AggSpec{Type: &pb.AggSpec_Last{Last: &pb.AggSpec_AggSpecLast{}}}, cols)
}

// AggMin keeps each group's smallest value; nulls are ignored.
func AggMin(cols ...string) Agg {
	return columnsAgg("min", &pb.AggSpec{Type: &pb.AggSpec_Min{Min: &pb.AggSpec_AggSpecMin{}}}, cols)
}

// AggMax keeps each group's largest value; nulls are ignored.
func AggMax(cols ...string) Agg {
	return columnsAgg("max", &pb.AggSpec{Type: &pb.AggSpec_Max{Max: &pb.AggSpec_AggSpecMax{}}}, cols)
}

// AggSum sums each group's values.
func AggSum(cols ...string) Agg {
	return columnsAgg("sum", &pb.AggSpec{Type: &pb.AggSpec_Sum{Sum: &pb.AggSpec_AggSpecSum{}}}, cols)
}

// AggAvg averages each group's values.
func AggAvg(cols ...string) Agg {
	return columnsAgg("avg", &pb.AggSpec{Type: &pb.AggSpec_Avg{Avg: &pb.AggSpec_AggSpecAvg{}}}, cols)
}

// AggDistinct collects each group's distinct values into an array column.
func AggDistinct(cols ...string) Agg {
	return columnsAgg("distinct", &pb.AggSpec{Type: &pb.AggSpec_Distinct{Distinct: &pb.AggSpec_AggSpecDistinct{}}}, cols)
}

// AggCountDistinct counts each group's distinct values (nulls not counted).
func AggCountDistinct(cols ...string) Agg {
	return columnsAgg("count_distinct", &pb.AggSpec{Type: &pb.AggSpec_CountDistinct{CountDistinct: &pb.AggSpec_AggSpecCountDistinct{}}}, cols)
}

// AggSortedLast keeps the values of each group's row with the greatest
// sortBy, whatever the rows' positions.
func AggSortedLast(sortBy string, cols ...string) Agg {
	return columnsAgg("sorted_last("+sortBy+")", &pb.AggSpec{Type: &pb.AggSpec_SortedLast{SortedLast: &pb.AggSpec_AggSpecSorted{
		Columns: []*pb.AggSpec_AggSpecSortedColumn{{ColumnName: sortBy}},
	}}}, cols)
}

// AggCount adds a column holding each group's row count.
func AggCount(column string) Agg {
	return Agg{desc: "count(" + column + ")", pb: &pb.Aggregation{Type: &pb.Aggregation_Count{Count: &pb.Aggregation_AggregationCount{ColumnName: column}}}}
}

// AggCountWhere adds a column counting each group's rows that pass all
// filters (Deephaven filter expressions, fixed text only).
func AggCountWhere(column string, filters ...string) Agg {
	return Agg{
		desc: "count_where(" + column + ": " + strings.Join(filters, ", ") + ")",
		pb:   &pb.Aggregation{Type: &pb.Aggregation_CountWhere{CountWhere: &pb.Aggregation_AggregationCountWhere{ColumnName: column, Filters: filters}}},
	}
}

// AggBy groups rows by the by columns and computes aggs per group, on the
// server (Deephaven's agg_by). The result ticks as the source changes:
// adds, replacements and deletes of its rows update their groups. With no
// by columns the whole table is one group.
func (t *Table) AggBy(ctx context.Context, aggs []Agg, by ...string) (*Table, error) {
	if len(aggs) == 0 {
		return nil, fmt.Errorf("deephaven: aggregate by %s: no aggregations", strings.Join(by, ", "))
	}
	descs := make([]string, len(aggs))
	pbs := make([]*pb.Aggregation, len(aggs))
	for i, a := range aggs {
		if a.pb == nil {
			return nil, fmt.Errorf("deephaven: aggregate by %s: aggregation %d is empty", strings.Join(by, ", "), i)
		}
		descs[i], pbs[i] = a.desc, a.pb
	}
	op := fmt.Sprintf("aggregate %s by [%s]", strings.Join(descs, ", "), strings.Join(by, ", "))
	return t.c.derive(ctx, op, []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.Aggregate(ctx, &pb.AggregateRequest{ResultId: r, SourceId: src[0], Aggregations: pbs, GroupByColumns: by})
	})
}

// SelectDistinct keeps the distinct combinations of columns.
func (t *Table) SelectDistinct(ctx context.Context, columns ...string) (*Table, error) {
	return t.c.derive(ctx, "select distinct "+strings.Join(columns, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.SelectDistinct(ctx, &pb.SelectDistinctRequest{ResultId: r, SourceId: src[0], ColumnNames: columns})
	})
}

// UpdateView adds or replaces columns computed on demand by formulas.
func (t *Table) UpdateView(ctx context.Context, formulas ...string) (*Table, error) {
	return t.c.derive(ctx, "update view "+strings.Join(formulas, ", "), []*Table{t}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return t.c.tables.UpdateView(ctx, &pb.SelectOrUpdateRequest{ResultId: r, SourceId: src[0], ColumnSpecs: formulas})
	})
}

// Merge concatenates tables with the same columns, in order. The result
// ticks when any of them changes.
func (c *Client) Merge(ctx context.Context, tables ...*Table) (*Table, error) {
	if len(tables) == 0 {
		return nil, fmt.Errorf("deephaven: merge: no tables")
	}
	return c.derive(ctx, fmt.Sprintf("merge %d tables", len(tables)), tables, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return c.tables.MergeTables(ctx, &pb.MergeTablesRequest{ResultId: r, SourceIds: src})
	})
}

// NaturalJoin adds to each left row the add columns of the right row with
// equal match columns (`Col` or `Left=Right`), or nulls when there is none.
// More than one matching right row is an error on the server.
func (c *Client) NaturalJoin(ctx context.Context, left, right *Table, match, add []string) (*Table, error) {
	op := "natural join on " + strings.Join(match, ", ")
	return c.derive(ctx, op, []*Table{left, right}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return c.tables.NaturalJoinTables(ctx, &pb.NaturalJoinTablesRequest{ResultId: r, LeftId: src[0], RightId: src[1], ColumnsToMatch: match, ColumnsToAdd: add})
	})
}

// WhereIn keeps the left rows whose match columns appear in right (or,
// with inverted, do not). It ticks with both sides.
func (c *Client) WhereIn(ctx context.Context, left, right *Table, inverted bool, match ...string) (*Table, error) {
	op := "where in on " + strings.Join(match, ", ")
	if inverted {
		op = "where not in on " + strings.Join(match, ", ")
	}
	return c.derive(ctx, op, []*Table{left, right}, func(ctx context.Context, r *pb.Ticket, src []*pb.TableReference) (*pb.ExportedTableCreationResponse, error) {
		return c.tables.WhereIn(ctx, &pb.WhereInRequest{ResultId: r, LeftId: src[0], RightId: src[1], Inverted: inverted, ColumnsToMatch: match})
	})
}
