import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('streaming', '0007_answer_feedback'),
    ]

    operations = [
        migrations.AddField(
            model_name='streamsession',
            name='regenerates',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='regenerations', to='streaming.streamsession'),
        ),
    ]
