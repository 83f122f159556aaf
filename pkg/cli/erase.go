package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wanotify/wanotify/pkg/erasure"
	"github.com/wanotify/wanotify/pkg/phone"
	"github.com/wanotify/wanotify/pkg/privacy"
)

func init() { extraCommands = append(extraCommands, newEraseCmd, newErasuresCmd) }

// errEraseCancelled is returned when an operator does not confirm.
var errEraseCancelled = errors.New("erase cancelled: nothing deleted")

// Eraser connects to ClickHouse with the shared WANOTIFY_CLICKHOUSE_*
// settings (a user allowed ALTER DELETE on the sink's tables) and returns
// the eraser of its database; call the returned function when done.
func (a *App) Eraser(cmd *cobra.Command) (*erasure.Eraser, func(), error) {
	key := privacy.HashKey(a.Env)
	conn, db, err := a.clickHouse(cmd.Context(), schemaHint)
	if err != nil {
		return nil, nil, err
	}
	return erasure.New(conn, db, []byte(key)), func() { _ = conn.Close() }, nil
}

func newEraseCmd(app *App) *cobra.Command {
	var (
		recipient, tenant, reason, actor string
		yes, dryRun                      bool
	)
	cmd := &cobra.Command{
		Use:   "erase --recipient <E.164>",
		Short: "Erase a person's data from ClickHouse (right to erasure) and record it",
		Long: `erase deletes every row that names a recipient's number, or one of that
person's notifications, from every table of the sink's ClickHouse database:
events, notification state, the provider id map, dead letters and ingest
errors (views read these tables, so communication_logs and the analytics
views no longer show the person). It waits until ClickHouse has rewritten
the affected parts, then records the erasure in the erasures table: who,
when, why, rows removed per table, and a salted HMAC of the number
(WANOTIFY_PRIVACY_HASH_KEY), never the number itself.

--tenant limits the erasure to one tenant's rows (a tenant's request);
without it the number is erased for every tenant.

Kafka is not touched: its topics keep records until their retention ends
(docs/security.md lists what stays where and for how long). Run erase
again once the longest retention (the DLQ, 30 days) has passed, in case a
record was consumed again meanwhile.

erase asks for confirmation: type "yes". --yes skips the question;
--dry-run only counts the rows that would go.
The ClickHouse user needs the ALTER DELETE and INSERT grants on the
database (ingest's read-only user cannot erase).`,
		Example: `  notifyctl erase --recipient +447700900123 --reason "DSR-2291"
  notifyctl erase --recipient +447700900123 --tenant acme --yes -o json
  notifyctl erasures --recipient +447700900123`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if recipient == "" {
				return &UsageError{errors.New("--recipient is required")}
			}
			req := erasure.Request{Recipient: recipient, Tenant: tenant, Reason: reason, Actor: actor, Via: "notifyctl", DryRun: dryRun}
			if req.Actor == "" {
				req.Actor = os.Getenv("USER")
			}
			if _, err := req.Validate(); err != nil {
				return &UsageError{fmt.Errorf("--recipient/--tenant: %w", err)}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			cmd.SetContext(ctx)
			er, closeFn, err := app.Eraser(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			if !yes && !dryRun {
				scope := "every tenant"
				if tenant != "" {
					scope = "tenant " + tenant
				}
				fmt.Fprintf(app.Err, "Erase every row of %s for %s from ClickHouse? This cannot be undone. Type yes to continue: ", phone.Mask(recipient), scope)
				answer := ""
				if app.In != nil {
					answer, _ = bufio.NewReader(app.In).ReadString('\n')
				}
				if !isTerminal(app.In) {
					fmt.Fprintln(app.Err)
				}
				if strings.TrimSpace(answer) != "yes" {
					return errEraseCancelled
				}
			}
			res, err := er.Erase(ctx, req)
			if err != nil {
				return schemaHint(fmt.Errorf("%w (nothing was recorded; erase may be run again)", err))
			}
			return app.Print(res, func(w *tabwriter.Writer) {
				if res.DryRun {
					fmt.Fprintf(w, "dry run: %d notifications of %s would be erased; nothing deleted\n", res.Notifications, phone.Mask(recipient))
					fmt.Fprintln(w, "TABLE\tROWS")
					printRows(w, res.RowsDeleted)
					return
				}
				fmt.Fprintf(w, "erasure %s: %d notifications of %s erased in %s\n", res.ErasureID, res.Notifications,
					phone.Mask(recipient), res.FinishedAt.Sub(res.RequestedAt).Round(time.Millisecond))
				fmt.Fprintln(w, "TABLE\tROWS DELETED")
				printRows(w, res.RowsDeleted)
				fmt.Fprintf(w, "recorded in %s (recipient hash %s…)\n", erasure.Table, res.RecipientHash[:16])
			})
		},
	}
	cmd.Flags().StringVar(&recipient, "recipient", "", "the person's number, E.164 (required)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "erase only this tenant's rows (default: every tenant)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (a ticket reference), kept in the audit")
	cmd.Flags().StringVar(&actor, "actor", "", "who asked, kept in the audit (default: $USER)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count the rows that would be erased; erase and record nothing")
	return cmd
}

func printRows(w *tabwriter.Writer, rows map[string]uint64) {
	tables := make([]string, 0, len(rows))
	for t := range rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(w, "%s\t%d\n", t, rows[t])
	}
}

func newErasuresCmd(app *App) *cobra.Command {
	var recipient string
	cmd := &cobra.Command{
		Use:   "erasures --recipient <E.164>",
		Short: "Show the recorded erasures of a number",
		Long: `erasures reads the erasures audit table and shows the erasures of a number:
when, by whom, why, and how many rows each table lost. The number is
matched against each row's salted HMAC (WANOTIFY_PRIVACY_HASH_KEY must be
the one used when erasing). Exit status 3 when there is none.`,
		Example: `  notifyctl erasures --recipient +447700900123 -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if recipient == "" {
				return &UsageError{errors.New("--recipient is required")}
			}
			if _, err := (erasure.Request{Recipient: recipient}).Validate(); err != nil {
				return &UsageError{fmt.Errorf("--recipient: %w", err)}
			}
			ctx, cancel := app.Context(cmd)
			defer cancel()
			cmd.SetContext(ctx)
			er, closeFn, err := app.Eraser(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			as, err := er.Find(ctx, recipient)
			if err != nil {
				return schemaHint(err)
			}
			if len(as) == 0 {
				return fmt.Errorf("%w: no erasure of %s is recorded", ErrNotFound, phone.Mask(recipient))
			}
			return app.Print(as, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ERASURE\tREQUESTED\tACTOR\tVIA\tTENANT\tREASON\tROWS")
				for _, a := range as {
					var n uint64
					for _, v := range a.RowsDeleted {
						n += v
					}
					t := a.Tenant
					if t == "" {
						t = "(all)"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", a.ErasureID, a.RequestedAt.Format(time.RFC3339), a.Actor, a.Via, t, a.Reason, n)
				}
			})
		},
	}
	cmd.Flags().StringVar(&recipient, "recipient", "", "the number, E.164 (required)")
	return cmd
}
