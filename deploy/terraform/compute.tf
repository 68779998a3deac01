# Aggregators: an Auto Scaling group behind an internal NLB (TCP 24224, health
# on /readyz, cross-zone, deregistration delay longer than the drain grace).
# Edge forwarders: a launch template whose user data installs the systemd unit.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "aggregator" {
  name               = "${var.name}-aggregator"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "aggregator" {
  role = aws_iam_role.aggregator.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["firehose:PutRecordBatch"], Resource = aws_kinesis_firehose_delivery_stream.logs.arn },
      { Effect = "Allow", Action = ["s3:PutObject"], Resource = "${aws_s3_bucket.lake.arn}/direct/*" },
    ]
  })
}

resource "aws_iam_instance_profile" "aggregator" {
  name = "${var.name}-aggregator"
  role = aws_iam_role.aggregator.name
}

resource "aws_lb" "aggregators" {
  name                             = "${var.name}-agg"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.private_subnet_ids
  enable_cross_zone_load_balancing = true
}

resource "aws_lb_target_group" "forward" {
  name                 = "${var.name}-forward"
  port                 = 24224
  protocol             = "TCP"
  vpc_id               = var.vpc_id
  deregistration_delay = 60 # > aggregator shutdown_grace_ms (10 s) + in-flight acks
  health_check {
    protocol            = "HTTP"
    port                = "24232"
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "forward" {
  load_balancer_arn = aws_lb.aggregators.arn
  port              = 24224
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.forward.arn
  }
}

locals {
  aggregator_config = yamlencode({
    forward = { bind = "0.0.0.0", port = 24224 }
    dedupe  = { type = "redis", redis = { cluster_nodes = ["${aws_elasticache_replication_group.dedupe.configuration_endpoint_address}:6379"] } }
    log = { type = "kafka", kafka = {
      brokers            = split(",", aws_msk_cluster.log.bootstrap_brokers_tls), ssl = true,
      replication_factor = 3, min_insync_replicas = 2, partitions = 24
    } }
    egress  = { routes = [{ match = "**", sinks = ["firehose"] }] }
    sinks   = [{ name = "firehose", type = "aws_firehose", delivery_stream = aws_kinesis_firehose_delivery_stream.logs.name, region = var.region, max_record_bytes = 262144 }]
    metrics = { bind = "0.0.0.0", port = 24232 }
  })
  forwarder_config = yamlencode({
    forward = { bind = "127.0.0.1", port = 24224 }
    http    = { bind = "127.0.0.1", port = 9880 }
    buffer  = { type = "disk", path = "/var/lib/tributary/buffer", max_bytes = 2147483648 }
    output  = { servers = [{ host = aws_lb.aggregators.dns_name, port = 24224 }], max_connection_age_ms = 300000 }
  })
}

resource "aws_launch_template" "aggregator" {
  name_prefix            = "${var.name}-aggregator-"
  image_id               = var.ami_id
  instance_type          = var.aggregator_instance_type
  vpc_security_group_ids = [aws_security_group.aggregator.id]
  iam_instance_profile { name = aws_iam_instance_profile.aggregator.name }
  user_data = base64encode(<<-EOT
    #!/bin/sh
    set -e
    id tributary >/dev/null 2>&1 || useradd --system --home /var/lib/tributary tributary
    mkdir -p /etc/tributary
    cat > /etc/tributary/aggregator.yaml <<'YAML'
    ${local.aggregator_config}
    YAML
    sh /opt/tributary/deploy/systemd/install-node.sh
    cp /opt/tributary/deploy/systemd/tributary-aggregator.service /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable --now tributary-aggregator
  EOT
  )
}

resource "aws_autoscaling_group" "aggregators" {
  name                      = "${var.name}-aggregators"
  min_size                  = var.aggregator_min
  max_size                  = var.aggregator_max
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.forward.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60
  launch_template {
    id      = aws_launch_template.aggregator.id
    version = "$Latest"
  }
}

resource "aws_autoscaling_policy" "cpu" {
  name                   = "${var.name}-aggregator-cpu"
  autoscaling_group_name = aws_autoscaling_group.aggregators.name
  policy_type            = "TargetTrackingScaling"
  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
    target_value = 60
  }
}

resource "aws_launch_template" "edge" {
  name_prefix            = "${var.name}-edge-"
  image_id               = var.ami_id
  instance_type          = var.edge_instance_type
  vpc_security_group_ids = concat(var.app_security_group_ids, [aws_security_group.edge.id])
  user_data = base64encode(<<-EOT
    #!/bin/sh
    set -e
    id tributary >/dev/null 2>&1 || useradd --system --home /var/lib/tributary tributary
    mkdir -p /etc/tributary
    cat > /etc/tributary/forwarder.yaml <<'YAML'
    ${local.forwarder_config}
    YAML
    sh /opt/tributary/deploy/systemd/install-node.sh
    cp /opt/tributary/deploy/systemd/tributary-forwarder.service /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable --now tributary-forwarder
  EOT
  )
}
