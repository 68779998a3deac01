# Security groups open only what each tier needs:
# apps/edge → NLB → aggregators :24224 (+ :24232 health from the VPC), aggregators → MSK :9094 (TLS), Redis :6379.

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_security_group" "aggregator" {
  name        = "${var.name}-aggregator"
  description = "Tributary aggregators: forward from edge forwarders, health checks from the NLB"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Forward Protocol from edge forwarders"
    from_port       = 24224
    to_port         = 24224
    protocol        = "tcp"
    security_groups = concat(var.app_security_group_ids, [aws_security_group.edge.id])
  }
  ingress {
    description = "NLB health checks (/readyz) and Prometheus from the VPC"
    from_port   = 24232
    to_port     = 24232
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
  ingress {
    description = "NLB target traffic preserves client IPs; allow the VPC range for the data port"
    from_port   = 24224
    to_port     = 24224
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
  egress {
    description = "MSK, Redis, Firehose/S3 endpoints"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "edge" {
  name        = "${var.name}-edge"
  description = "Edge forwarders: no inbound; apps talk to 127.0.0.1"
  vpc_id      = var.vpc_id
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "msk" {
  name   = "${var.name}-msk"
  vpc_id = var.vpc_id
  ingress {
    description     = "Kafka TLS from aggregators"
    from_port       = 9094
    to_port         = 9094
    protocol        = "tcp"
    security_groups = [aws_security_group.aggregator.id]
  }
}

resource "aws_security_group" "redis" {
  name   = "${var.name}-redis"
  vpc_id = var.vpc_id
  ingress {
    description     = "Redis from aggregators"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.aggregator.id]
  }
}
