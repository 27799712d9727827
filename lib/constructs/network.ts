// The network everything runs in: a VPC with public subnets (the load balancer, the NAT gateways)
// and private ones (ingress tasks, scanning, Lambdas), flow logs, the ECS cluster the services
// share, and the private DNS namespace through which the scan Lambda finds the scanning service.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** Availability zones. Default: 2. */
  readonly maxAzs?: number;
  /** NAT gateways; their Elastic IPs are the sending IPs of direct (mx) delivery. Default: 2. */
  readonly natGateways?: number;
  /** Existing Elastic IP allocations for the NAT gateways. Default: new addresses. */
  readonly natEipAllocationIds?: string[];
  /** Days VPC flow logs are kept. Default: 90. */
  readonly flowLogRetentionDays?: logs.RetentionDays;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly namespace: servicediscovery.PrivateDnsNamespace;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    const eips = props.natEipAllocationIds ?? [];
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: props.maxAzs ?? 2,
      natGateways: props.natGateways ?? 2,
      natGatewayProvider: ec2.NatProvider.gateway(eips.length > 0 ? { eipAllocationIds: eips } : {}),
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      // S3 and DynamoDB traffic stays off the NAT gateways (cost, and no internet path).
      gatewayEndpoints: {
        s3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        dynamodb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetentionDays ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });

    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    this.namespace = new servicediscovery.PrivateDnsNamespace(this, 'Namespace', { name: 'outpost.internal', vpc: this.vpc });
  }
}
