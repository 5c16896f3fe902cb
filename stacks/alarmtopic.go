package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
)

// AlarmTopicProps says who hears a rung's alarms.
type AlarmTopicProps struct {
	// Email is subscribed when set; the topic exists either way so other
	// subscribers (chat, paging) can be added without touching alarms.
	Email string
}

// AlarmTopic is the SNS topic every alarm of a rung notifies: encrypted, and
// accepting publishes over TLS only.
type AlarmTopic struct {
	constructs.Construct
	Topic  awssns.Topic
	Action awscloudwatch.IAlarmAction
}

func NewAlarmTopic(scope constructs.Construct, id string, props AlarmTopicProps) *AlarmTopic {
	c := constructs.NewConstruct(scope, s(id))
	// A customer-managed key, because CloudWatch cannot publish to a topic
	// encrypted with the AWS-managed SNS key.
	key := awskms.NewKey(c, s("Key"), &awskms.KeyProps{
		Description:       s("Encrypts the alarm topic's messages"),
		EnableKeyRotation: b(true),
	})
	key.GrantEncryptDecrypt(awsiam.NewServicePrincipal(s("cloudwatch.amazonaws.com"), nil))
	topic := awssns.NewTopic(c, s("Topic"), &awssns.TopicProps{
		MasterKey:  key,
		EnforceSSL: b(true),
	})
	if props.Email != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(s(props.Email), nil))
	}
	return &AlarmTopic{Construct: c, Topic: topic, Action: awscloudwatchactions.NewSnsAction(topic)}
}
