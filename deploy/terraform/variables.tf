variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name" {
  type        = string
  default     = "tributary"
  description = "Prefix for every resource."
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "At least two subnets in different AZs (NLB cross-zone, MSK, ElastiCache)."
}

variable "app_security_group_ids" {
  type        = list(string)
  description = "Security groups of the application hosts that run an edge forwarder."
}

variable "ami_id" {
  type        = string
  description = "An AMI with /opt/tributary installed (see deploy/Dockerfile for the build); the user data installs Node.js 24 (deploy/systemd/install-node.sh)."
}

variable "aggregator_instance_type" {
  type    = string
  default = "c7g.large"
}

variable "aggregator_min" {
  type    = number
  default = 2
}

variable "aggregator_max" {
  type    = number
  default = 8
}

variable "edge_instance_type" {
  type    = string
  default = "t4g.medium"
}

variable "bucket_name" {
  type = string
}
