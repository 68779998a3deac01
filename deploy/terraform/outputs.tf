output "nlb_dns_name" {
  value       = aws_lb.aggregators.dns_name
  description = "Point edge forwarders' output.servers at this (port 24224)."
}

output "edge_launch_template_id" {
  value = aws_launch_template.edge.id
}

output "firehose_stream" {
  value = aws_kinesis_firehose_delivery_stream.logs.name
}

output "athena_table" {
  value = "${aws_glue_catalog_database.logs.name}.${aws_glue_catalog_table.events.name}"
}
