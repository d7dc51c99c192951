CREATE TABLE "backchannel_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"client_id" text NOT NULL,
	"session_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp (3) with time zone NOT NULL,
	"next_attempt_at" timestamp (3) with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"claimed_by" text,
	"claimed_until" timestamp (3) with time zone,
	"delivered_at" timestamp (3) with time zone,
	"failed_at" timestamp (3) with time zone,
	"last_error" text
);
--> statement-breakpoint
ALTER TABLE "backchannel_deliveries" ADD CONSTRAINT "backchannel_deliveries_client_id_oauth_clients_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."oauth_clients"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "backchannel_deliveries_session_client_key" ON "backchannel_deliveries" USING btree ("session_id","client_id");--> statement-breakpoint
CREATE INDEX "backchannel_deliveries_due_idx" ON "backchannel_deliveries" USING btree ("delivered_at","failed_at","next_attempt_at");--> statement-breakpoint
CREATE INDEX "backchannel_deliveries_client_idx" ON "backchannel_deliveries" USING btree ("client_id");