#!/bin/sh
# Creates the bucket and the Firehose delivery stream (S3 destination, Hive-style prefix).
set -e
awslocal s3 mb s3://tributary-logs
awslocal iam create-role --role-name firehose --assume-role-policy-document '{"Version":"2012-10-17","Statement":[]}' >/dev/null
awslocal firehose create-delivery-stream --delivery-stream-name tributary-logs \
  --extended-s3-destination-configuration \
  'RoleARN=arn:aws:iam::000000000000:role/firehose,BucketARN=arn:aws:s3:::tributary-logs,Prefix=firehose/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/,ErrorOutputPrefix=firehose-errors/,BufferingHints={SizeInMBs=1,IntervalInSeconds=10},CompressionFormat=GZIP'
